// Reading a JSON file with errors that name the file, the line and column of a syntax
// error, or the dotted path of a field of the wrong type.
#pragma once

#include <boost/json/value.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace glm4::model {

class tokenizer_json_reader {
 public:
  /// Throws tokenizer_error when the file cannot be read or is not JSON.
  explicit tokenizer_json_reader(const std::filesystem::path& path);

  const boost::json::value& root() const { return root_; }
  const std::string& name() const { return name_; }

  /// Each getter throws tokenizer_error "<file>: <field>: expected ..." on a type mismatch.
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
  boost::json::value root_;
};

}  // namespace glm4::model
