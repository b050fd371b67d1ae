// OpenAI error objects.
#include "http/api_error.hpp"

#include <boost/json/serialize.hpp>

namespace glm4::http {

api_error invalid_request(std::string message, std::optional<std::string> param, std::string code) {
  return {400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

api_error not_found(std::string message, std::string code) {
  return {404, std::move(message), "invalid_request_error", std::nullopt, std::move(code)};
}

api_error unauthorized() {
  return {401, "Incorrect or missing API key; send it as 'Authorization: Bearer <key>'.",
          "invalid_request_error", std::nullopt, "invalid_api_key"};
}

api_error server_error(std::string message) {
  return {500, std::move(message), "server_error", std::nullopt, std::nullopt};
}

api_error overloaded(std::string message) {
  return {429, std::move(message), "rate_limit_error", std::nullopt, "overloaded"};
}

boost::json::object error_fields(const api_error& error) {
  boost::json::object fields;
  fields["message"] = error.message;
  fields["type"] = error.type;
  fields["param"] = error.param ? boost::json::value(*error.param) : boost::json::value(nullptr);
  fields["code"] = error.code ? boost::json::value(*error.code) : boost::json::value(nullptr);
  return fields;
}

boost::json::object to_json(const api_error& error) {
  boost::json::object body;
  body["error"] = error_fields(error);
  return body;
}

std::string to_body(const api_error& error) { return boost::json::serialize(to_json(error)); }

}  // namespace glm4::http
