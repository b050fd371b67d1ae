// Bodies of the routes that need no scheduler; see simple_routes.hpp.
#include "http/simple_routes.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

#include "http/tokenize_api.hpp"

namespace glm4::http {
namespace {

simple_response from_result(const api_result<std::string>& result) {
  if (const auto* error = std::get_if<api_error>(&result)) return error_response(*error);
  return {200, "application/json", std::get<std::string>(result)};
}

}  // namespace

simple_response error_response(const api_error& error) { return {error.status, "application/json", to_body(error)}; }

simple_response health_response(const actors::engine_status& status) {
  boost::json::object body;
  if (status.is_ready) {
    body["status"] = "ok";
    return {200, "application/json", boost::json::serialize(body)};
  }
  body["status"] = "unavailable";
  body["reason"] = status.not_ready_reason;
  return {503, "application/json", boost::json::serialize(body)};
}

simple_response metrics_response(const actors::engine_status& status, server_metrics& metrics,
                                 const metrics_registry& registry) {
  metrics.requests_running.set(static_cast<double>(status.num_running));
  metrics.requests_waiting.set(static_cast<double>(status.num_waiting));
  metrics.kv_cache_usage_ratio.set(status.kv_cache_usage);
  return {200, std::string(prometheus_content_type), registry.render()};
}

simple_response models_response(const std::vector<std::string>& served_models, std::int64_t created,
                                std::int64_t max_model_len) {
  return {200, "application/json", models_body(served_models, created, max_model_len)};
}

simple_response tokenize_response(std::string_view body, const request_limits& limits, const model::tokenizer& tokenizer,
                                  std::int64_t max_model_len) {
  return from_result(tokenize_body(body, limits, tokenizer, max_model_len));
}

simple_response detokenize_response(std::string_view body, const request_limits& limits,
                                    const model::tokenizer& tokenizer) {
  return from_result(detokenize_body(body, limits, tokenizer));
}

bool is_json_content_type(std::string_view content_type) {
  if (content_type.empty()) return true;
  const std::string_view media = content_type.substr(0, content_type.find(';'));
  std::string lower;
  for (char c : media)
    if (!std::isspace(static_cast<unsigned char>(c))) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "application/json";
}

}  // namespace glm4::http
