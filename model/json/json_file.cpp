#include "model/json/json_file.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace glm4::model {

namespace {

[[noreturn]] void raise_error(json_raise raise, const std::string& message) {
  raise(message);
  std::abort();  // a json_raise that returns is a programming error
}

// "L:C" of `offset` in `text`, both counted from 1.
std::string position_of(std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return std::to_string(line) + ":" + std::to_string(column);
}

std::optional<std::int64_t> exact_integer(const boost::json::value& value) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64() && value.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(value.get_uint64());
  return std::nullopt;
}

// exact_integer, and also a whole double: some config exporters write 4096.0 for integers.
std::optional<std::int64_t> lenient_integer(const boost::json::value& value) {
  if (value.is_double()) {
    const double number = value.get_double();
    if (std::isfinite(number) && number == std::floor(number) && std::fabs(number) < 9.0e15)
      return static_cast<std::int64_t>(number);
    return std::nullopt;
  }
  return exact_integer(value);
}

// Shortest round-trip form, as Python writes floats (0.5, 1.5625e-07), not Boost's 5E-1.
std::string format_double(double value) {
  if (!std::isfinite(value)) return "null";
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, value);
  std::string out(text, result.ptr);
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  return out;
}

void write_pretty(const boost::json::value& value, int depth, std::string& out) {
  const std::string indent(static_cast<std::size_t>(2 * (depth + 1)), ' ');
  const std::string closing(static_cast<std::size_t>(2 * depth), ' ');
  if (const auto* object = value.if_object(); object && !object->empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& [key, item] : *object) {
      out += (first ? "" : ",\n") + indent + boost::json::serialize(boost::json::value(key)) + ": ";
      write_pretty(item, depth + 1, out);
      first = false;
    }
    out += "\n" + closing + "}";
  } else if (const auto* array = value.if_array(); array && !array->empty()) {
    out += "[\n";
    for (std::size_t i = 0; i < array->size(); ++i) {
      out += (i ? ",\n" : "") + indent;
      write_pretty((*array)[i], depth + 1, out);
    }
    out += "\n" + closing + "]";
  } else if (value.is_double()) {
    out += format_double(value.get_double());
  } else {
    out += boost::json::serialize(value);
  }
}

// "<kind> <value>", what a mistyped key held.
std::string described(const boost::json::value& value) {
  return std::string(json_kind_name(value)) + " " + boost::json::serialize(value);
}

}  // namespace

std::string pretty_json(const boost::json::value& value) {
  std::string out;
  write_pretty(value, 0, out);
  return out + "\n";
}

boost::json::value parse_json_text(std::string_view text, const std::string& label, json_raise raise) {
  boost::json::stream_parser parser;
  boost::system::error_code error;
  const std::size_t consumed = parser.write_some(text.data(), text.size(), error);
  if (!error) parser.finish(error);
  if (error) raise_error(raise, label + ":" + position_of(text, consumed) + ": invalid JSON: " + error.message());
  return parser.release();
}

boost::json::value parse_json_file(const std::filesystem::path& path, json_raise raise) {
  std::ifstream in(path, std::ios::binary);
  if (!in) raise_error(raise, path.string() + ": cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_json_text(text.str(), path.string(), raise);
}

std::string_view json_kind_name(const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64: return "integer";
    case boost::json::kind::double_: return "number";
    case boost::json::kind::string: return "string";
    case boost::json::kind::array: return "array";
    case boost::json::kind::object: return "object";
  }
  return "?";
}

json_fields::json_fields(const boost::json::value& value, std::string label, json_raise raise)
    : object_(value.if_object()), label_(std::move(label)), raise_(raise) {
  if (!object_) raise_error(raise_, label_ + ": expected a JSON object, got " + std::string(json_kind_name(value)));
}

const boost::json::value* json_fields::find(std::string_view key) const {
  const auto* value = object_->if_contains(key);
  if (!value || value->is_null()) return nullptr;
  return value;
}

bool json_fields::has(std::string_view key) const { return find(key) != nullptr; }

void json_fields::fail(std::string_view key, const std::string& why) const {
  raise_error(raise_, label_ + ": key \"" + std::string(key) + "\": " + why);
}

std::optional<std::int64_t> json_fields::optional_int(std::string_view key) const {
  const auto* value = find(key);
  if (!value) return std::nullopt;
  auto number = lenient_integer(*value);
  if (!number) fail(key, "expected an integer, got " + described(*value));
  return number;
}

std::int64_t json_fields::require_int(std::string_view key) const {
  auto number = optional_int(key);
  if (!number) fail(key, "missing (an integer is required)");
  return *number;
}

std::optional<double> json_fields::optional_number(std::string_view key) const {
  const auto* value = find(key);
  if (!value) return std::nullopt;
  if (value->is_double()) return value->get_double();
  if (value->is_int64()) return static_cast<double>(value->get_int64());
  if (value->is_uint64()) return static_cast<double>(value->get_uint64());
  fail(key, "expected a number, got " + described(*value));
}

double json_fields::require_number(std::string_view key) const {
  auto number = optional_number(key);
  if (!number) fail(key, "missing (a number is required)");
  return *number;
}

std::optional<bool> json_fields::optional_bool(std::string_view key) const {
  const auto* value = find(key);
  if (!value) return std::nullopt;
  if (!value->is_bool()) fail(key, "expected true or false, got " + described(*value));
  return value->get_bool();
}

std::optional<std::string> json_fields::optional_string(std::string_view key) const {
  const auto* value = find(key);
  if (!value) return std::nullopt;
  if (!value->is_string()) fail(key, "expected a string, got " + described(*value));
  return std::string(value->get_string());
}

std::string json_fields::require_string(std::string_view key) const {
  auto text = optional_string(key);
  if (!text) fail(key, "missing (a string is required)");
  return *text;
}

json_document::json_document(const std::filesystem::path& path, json_raise raise)
    : name_(path.string()), raise_(raise), root_(parse_json_file(path, raise)) {}

void json_document::fail(std::string_view field, std::string_view what) const {
  raise_error(raise_, name_ + ": " + std::string(field) + ": " + std::string(what));
}

const boost::json::object& json_document::object(const boost::json::value& v, std::string_view field) const {
  if (!v.is_object()) fail(field, "expected an object");
  return v.get_object();
}

const boost::json::array& json_document::array(const boost::json::value& v, std::string_view field) const {
  if (!v.is_array()) fail(field, "expected an array");
  return v.get_array();
}

const boost::json::string& json_document::string(const boost::json::value& v, std::string_view field) const {
  if (!v.is_string()) fail(field, "expected a string");
  return v.get_string();
}

std::int64_t json_document::integer(const boost::json::value& v, std::string_view field) const {
  const auto number = exact_integer(v);
  if (!number) fail(field, "expected an integer");
  return *number;
}

bool json_document::boolean(const boost::json::value& v, std::string_view field) const {
  if (!v.is_bool()) fail(field, "expected true or false");
  return v.get_bool();
}

const boost::json::value* json_document::member(const boost::json::object& o, std::string_view key) const {
  const boost::json::value* v = o.if_contains(key);
  return v == nullptr || v->is_null() ? nullptr : v;
}

const boost::json::value& json_document::required(const boost::json::object& o, std::string_view key,
                                                  std::string_view field) const {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr) fail(field, "missing");
  return *v;
}

}  // namespace glm4::model
