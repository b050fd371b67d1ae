// Typed reads of request JSON: absent and null are the same, a wrong type throws an api_exception
// naming the field path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace glm4::http {

[[noreturn]] void fail_field(const std::string& path, const std::string& message,
                             const std::string& code = "invalid_value");

/// The member, or nullptr when it is absent or null.
const boost::json::value* find_field(const boost::json::object& object, std::string_view key);

/// Integers also accept integral doubles (5.0), as OpenAI's own validation does; bools are not numbers.
std::int64_t as_integer(const boost::json::value& value, const std::string& path);
double as_number(const boost::json::value& value, const std::string& path);
bool as_bool(const boost::json::value& value, const std::string& path);
const boost::json::string& as_string(const boost::json::value& value, const std::string& path);
const boost::json::array& as_array(const boost::json::value& value, const std::string& path);
const boost::json::object& as_object(const boost::json::value& value, const std::string& path);

/// path defaults to key.
std::optional<std::int64_t> get_integer(const boost::json::object& object, std::string_view key);
std::optional<double> get_number(const boost::json::object& object, std::string_view key);
std::optional<bool> get_bool(const boost::json::object& object, std::string_view key);
std::optional<std::string> get_string(const boost::json::object& object, std::string_view key);

/// An integer in [lo, hi], named path in the message.
std::int32_t to_int32(std::int64_t value, const std::string& path, std::int64_t lo, std::int64_t hi);

}  // namespace glm4::http
