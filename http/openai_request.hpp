// POST /v1/chat/completions and /v1/completions bodies: parsed, validated and turned into a
// prompt and sampling_params before anything reaches the scheduler.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>

#include "engine/sampling_params.hpp"
#include "http/api_error.hpp"
#include "model/tokenizer/chat_template.hpp"

namespace glm4::model {
class tokenizer;
}

namespace glm4::http {

using engine::token_id;

enum class api_kind { chat, completion };

struct request_limits {
  std::int64_t vocab_size = 0;             // token ids (prompt, logit_bias, stop_token_ids); 0 skips
  std::vector<std::string> served_models;  // a request naming another model is a 404; empty accepts any
  std::size_t max_depth = 32;              // JSON nesting
  std::size_t max_stop = 4;                // stop strings, as OpenAI
  std::int32_t default_completion_max_tokens = 16;  // OpenAI's /v1/completions default
};

struct openai_request {
  api_kind kind = api_kind::chat;
  std::optional<std::string> model;
  std::vector<model::chat_message> messages;  // chat: content parts joined with "\n" as vLLM does
  std::optional<std::string> prompt_text;     // completion: a string prompt
  std::vector<token_id> prompt_token_ids;     // completion: a token-id prompt
  engine::sampling_params params;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::optional<std::string> user;
};

template <class T>
using api_result = std::variant<T, api_error>;

/// Never throws: a bad body (not JSON, too deep, invalid UTF-8, not an object) or a bad field
/// becomes a 400 whose param names the field path ("messages[2].role", "logit_bias").
api_result<openai_request> parse_chat_request(std::string_view body, const request_limits& limits);
api_result<openai_request> parse_completion_request(std::string_view body, const request_limits& limits);

/// Pieces the other JSON routes share; they throw api_exception naming the field.
/// The body as an object: valid JSON, valid UTF-8, at most limits.max_depth deep.
boost::json::object parse_json_body(std::string_view body, const request_limits& limits);
/// "model": absent, or one of limits.served_models (else a 404 model_not_found).
std::optional<std::string> read_model(const boost::json::object& body, const request_limits& limits);
/// "messages": roles system/user/assistant ("developer" is system), text content.
std::vector<model::chat_message> read_chat_messages(const boost::json::object& body);

/// The ids the engine runs: the GLM chat template for chat; for a string prompt the text
/// encoded after [gMASK]<sop> (unless it already starts with "[gMASK]"); token ids as given.
std::vector<token_id> prompt_token_ids(const openai_request& request, const model::tokenizer& tokenizer);

}  // namespace glm4::http
