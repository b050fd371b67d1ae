// Reading the JSON files of a model directory (config.json, tokenizer.json, safetensors
// headers): parse errors with line and column, typed access whose errors name the file and
// the key or field path. Each caller picks the exception type it reports with.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace glm4::model {

/// Throws the caller's exception (checkpoint_error, tokenizer_error) with `message`; it must
/// not return. Every error of this module goes through one.
using json_raise = void (*)(const std::string& message);

/// Parses `text`; a syntax error raises "<label>:L:C: invalid JSON: <why>".
boost::json::value parse_json_text(std::string_view text, const std::string& label, json_raise raise);

/// Reads and parses a whole file; the label in errors is the path.
boost::json::value parse_json_file(const std::filesystem::path& path, json_raise raise);

/// Typed access to the keys of one JSON object. A key that is absent or null counts as missing.
class json_fields {
 public:
  /// Raises when `value` is not an object.
  json_fields(const boost::json::value& value, std::string label, json_raise raise);

  const std::string& label() const { return label_; }
  const boost::json::object& object() const { return *object_; }
  bool has(std::string_view key) const;
  const boost::json::value* find(std::string_view key) const;

  std::int64_t require_int(std::string_view key) const;
  std::optional<std::int64_t> optional_int(std::string_view key) const;
  double require_number(std::string_view key) const;
  std::optional<double> optional_number(std::string_view key) const;
  std::optional<bool> optional_bool(std::string_view key) const;
  std::string require_string(std::string_view key) const;
  std::optional<std::string> optional_string(std::string_view key) const;

  /// Raises "<label>: key \"<key>\": <why>".
  [[noreturn]] void fail(std::string_view key, const std::string& why) const;

 private:
  const boost::json::object* object_;
  std::string label_;
  json_raise raise_;
};

/// A whole parsed file walked by dotted field paths ("model.vocab", "added_tokens[0].id").
class json_document {
 public:
  /// Raises when the file cannot be read or is not JSON.
  json_document(const std::filesystem::path& path, json_raise raise);

  const boost::json::value& root() const { return root_; }
  const std::string& name() const { return name_; }

  /// Each getter raises "<file>: <field>: expected ..." on a type mismatch.
  const boost::json::object& object(const boost::json::value& v, std::string_view field) const;
  const boost::json::array& array(const boost::json::value& v, std::string_view field) const;
  const boost::json::string& string(const boost::json::value& v, std::string_view field) const;
  std::int64_t integer(const boost::json::value& v, std::string_view field) const;
  bool boolean(const boost::json::value& v, std::string_view field) const;

  /// A member that may be absent or null: nullptr then.
  const boost::json::value* member(const boost::json::object& o, std::string_view key) const;
  /// A member that must be present.
  const boost::json::value& required(const boost::json::object& o, std::string_view key,
                                     std::string_view field) const;

  [[noreturn]] void fail(std::string_view field, std::string_view what) const;

 private:
  std::string name_;
  json_raise raise_;
  boost::json::value root_;
};

/// Two-space indented JSON ending in a newline, as transformers writes config files.
std::string pretty_json(const boost::json::value& value);

/// "integer", "string", "array", ... for error messages.
std::string_view json_kind_name(const boost::json::value& value);

}  // namespace glm4::model
