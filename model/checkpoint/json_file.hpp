// Reading JSON files of a checkpoint: parse errors with line and column, typed keys whose
// errors name the file and the key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace glm4::model {

/// Parses `text`; a syntax error throws checkpoint_error "<label>: invalid JSON at line L, column C: ...".
boost::json::value parse_json_text(std::string_view text, const std::string& label);

/// Reads and parses a whole file; the label in errors is the path.
boost::json::value parse_json_file(const std::filesystem::path& path);

/// Typed access to the keys of one JSON object. A key that is absent or null counts as missing.
class json_fields {
 public:
  /// Throws checkpoint_error when `value` is not an object.
  json_fields(const boost::json::value& value, std::string label);

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

  /// Throws checkpoint_error "<label>: key \"<key>\": <why>".
  [[noreturn]] void fail(std::string_view key, const std::string& why) const;

 private:
  const boost::json::object* object_;
  std::string label_;
};

/// Two-space indented JSON ending in a newline, as transformers writes config files.
std::string pretty_json(const boost::json::value& value);

/// "integer", "string", "array", ... for error messages.
std::string_view json_kind_name(const boost::json::value& value);

}  // namespace glm4::model
