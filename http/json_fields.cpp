// Typed reads of request JSON.
#include "http/json_fields.hpp"

#include <cmath>
#include <limits>

#include "http/api_error.hpp"

namespace glm4::http {
namespace {

[[noreturn]] void fail_type(const std::string& path, const char* expected, const boost::json::value& got) {
  const char* kind = got.is_bool()     ? "a boolean"
                     : got.is_string() ? "a string"
                     : got.is_array()  ? "an array"
                     : got.is_object() ? "an object"
                     : got.is_null()   ? "null"
                                       : "a number";
  fail_field(path, "'" + path + "' must be " + expected + ", got " + kind, "invalid_type");
}

}  // namespace

void fail_field(const std::string& path, const std::string& message, const std::string& code) {
  throw api_exception(invalid_request(message, path, code));
}

const boost::json::value* find_field(const boost::json::object& object, std::string_view key) {
  const boost::json::value* value = object.if_contains(key);
  return value && !value->is_null() ? value : nullptr;
}

std::int64_t as_integer(const boost::json::value& value, const std::string& path) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64()) {
    if (value.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      fail_field(path, "'" + path + "' is too large");
    return static_cast<std::int64_t>(value.get_uint64());
  }
  if (value.is_double()) {
    const double d = value.get_double();
    // 2^63 is the first double past int64's range.
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.2233720368547758e18)
      return static_cast<std::int64_t>(d);
  }
  fail_type(path, "an integer", value);
}

double as_number(const boost::json::value& value, const std::string& path) {
  if (value.is_int64()) return static_cast<double>(value.get_int64());
  if (value.is_uint64()) return static_cast<double>(value.get_uint64());
  if (value.is_double()) return value.get_double();
  fail_type(path, "a number", value);
}

bool as_bool(const boost::json::value& value, const std::string& path) {
  if (value.is_bool()) return value.get_bool();
  fail_type(path, "a boolean", value);
}

const boost::json::string& as_string(const boost::json::value& value, const std::string& path) {
  if (value.is_string()) return value.get_string();
  fail_type(path, "a string", value);
}

const boost::json::array& as_array(const boost::json::value& value, const std::string& path) {
  if (value.is_array()) return value.get_array();
  fail_type(path, "an array", value);
}

const boost::json::object& as_object(const boost::json::value& value, const std::string& path) {
  if (value.is_object()) return value.get_object();
  fail_type(path, "an object", value);
}

std::optional<std::int64_t> get_integer(const boost::json::object& object, std::string_view key) {
  const auto* value = find_field(object, key);
  if (!value) return std::nullopt;
  return as_integer(*value, std::string(key));
}

std::optional<double> get_number(const boost::json::object& object, std::string_view key) {
  const auto* value = find_field(object, key);
  if (!value) return std::nullopt;
  return as_number(*value, std::string(key));
}

std::optional<bool> get_bool(const boost::json::object& object, std::string_view key) {
  const auto* value = find_field(object, key);
  if (!value) return std::nullopt;
  return as_bool(*value, std::string(key));
}

std::optional<std::string> get_string(const boost::json::object& object, std::string_view key) {
  const auto* value = find_field(object, key);
  if (!value) return std::nullopt;
  return std::string(as_string(*value, std::string(key)));
}

std::int32_t to_int32(std::int64_t value, const std::string& path, std::int64_t lo, std::int64_t hi) {
  if (value < lo || value > hi)
    fail_field(path, "'" + path + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "], got " + std::to_string(value));
  return static_cast<std::int32_t>(value);
}

}  // namespace glm4::http
