// OpenAI's error object and the HTTP status that carries it.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

#include <boost/json/object.hpp>

namespace glm4::http {

/// {"error": {"message", "type", "param", "code"}} with its status; param and code are null when unset.
struct api_error {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::optional<std::string> param;  // the request field, e.g. "messages[1].content"
  std::optional<std::string> code;   // e.g. "invalid_type", "invalid_value", "model_not_found"
};

/// A 400 invalid_request_error naming the field.
api_error invalid_request(std::string message, std::optional<std::string> param = std::nullopt,
                          std::string code = "invalid_value");
api_error not_found(std::string message, std::string code = "not_found");
api_error unauthorized();
api_error server_error(std::string message);
api_error overloaded(std::string message);

/// The error member alone: {"message", "type", "param", "code"}.
boost::json::object error_fields(const api_error& error);
/// The whole body: {"error": {...}}.
boost::json::object to_json(const api_error& error);
std::string to_body(const api_error& error);

/// Thrown by the request parsers; caught at their boundary and returned as a value.
class api_exception : public std::runtime_error {
 public:
  explicit api_exception(api_error error) : std::runtime_error(error.message), error_(std::move(error)) {}
  const api_error& error() const { return error_; }

 private:
  api_error error_;
};

}  // namespace glm4::http
