// The routes that answer at once, without the scheduler: /health, /v1/models, /metrics,
// /tokenize, /detokenize. Beast-free: each returns the status, content type and body to send.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "actors/engine_status.hpp"
#include "http/openai_request.hpp"
#include "http/server_metrics.hpp"

namespace glm4::model {
class tokenizer;
}

namespace glm4::http {

struct simple_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

simple_response error_response(const api_error& error);

/// 200 {"status": "ok"} when ready; 503 {"status": "unavailable", "reason": ...} otherwise.
simple_response health_response(const actors::engine_status& status);

/// The gauges are set from the status, then every metric is rendered.
simple_response metrics_response(const actors::engine_status& status, server_metrics& metrics,
                                 const metrics_registry& registry);

simple_response models_response(const std::vector<std::string>& served_models, std::int64_t created,
                                std::int64_t max_model_len);

simple_response tokenize_response(std::string_view body, const request_limits& limits, const model::tokenizer& tokenizer,
                                  std::int64_t max_model_len);
simple_response detokenize_response(std::string_view body, const request_limits& limits,
                                    const model::tokenizer& tokenizer);

/// A body's Content-Type is acceptable when absent or application/json (any parameters).
bool is_json_content_type(std::string_view content_type);

}  // namespace glm4::http
