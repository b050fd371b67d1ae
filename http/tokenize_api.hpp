// Bodies of POST /tokenize, POST /detokenize and GET /v1/models (vLLM's shapes).
//   /tokenize   {"prompt": "..."} or {"messages": [...]}, "add_special_tokens", "add_generation_prompt"
//               -> {"count", "max_model_len", "tokens": [...]}
//   /detokenize {"tokens": [...]} -> {"prompt": "..."}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/openai_request.hpp"

namespace glm4::http {

/// Never throws; a bad body or field is a 400 naming it.
api_result<std::string> tokenize_body(std::string_view body, const request_limits& limits,
                                      const model::tokenizer& tokenizer, std::int64_t max_model_len);
api_result<std::string> detokenize_body(std::string_view body, const request_limits& limits,
                                        const model::tokenizer& tokenizer);

/// {"object": "list", "data": [{"id", "object": "model", "created", "owned_by", "root", "max_model_len"}]}.
std::string models_body(const std::vector<std::string>& served_models, std::int64_t created,
                        std::int64_t max_model_len);

}  // namespace glm4::http
