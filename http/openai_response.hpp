// The non-streamed reply: engine events of one request collected into a chat.completion or
// text_completion body.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "engine/request_output.hpp"
#include "http/api_error.hpp"
#include "http/openai_request.hpp"

namespace glm4::http {

/// What every body and chunk of one reply shares.
struct response_context {
  api_kind kind = api_kind::chat;
  std::string id;             // "chatcmpl-..." or "cmpl-..."
  std::int64_t created = 0;   // unix seconds
  std::string model;          // the served model name
  std::int32_t n = 1;         // choices
  bool logprobs = false;      // choices carry logprobs
  bool include_usage = false; // streams end with a usage chunk
  const model::tokenizer* tokenizer = nullptr;  // token texts in logprobs; may be null
};

/// "chatcmpl-" or "cmpl-" then unique as 16 hex digits.
std::string response_id(api_kind kind, std::uint64_t unique);

response_context make_response_context(const openai_request& request, std::string id, std::int64_t created,
                                       std::string model, const model::tokenizer* tokenizer);

struct usage_counts {
  std::int64_t num_prompt_tokens = 0;
  std::int64_t num_completion_tokens = 0;  // over all choices
};
boost::json::object usage_json(const usage_counts& usage);

/// "stop", "length", "abort"; error has no OpenAI word and is reported as an error instead.
std::string finish_reason_text(engine::finish_reason reason);

/// Feed it every event of the request, in order, then build the body once finished().
class completion_accumulator {
 public:
  explicit completion_accumulator(response_context context);

  void add(const engine::request_output& event);
  /// Every choice has ended.
  bool finished() const;
  /// A 500 server_error when a choice ended in error; the body must not be sent then.
  std::optional<api_error> error() const;
  usage_counts usage() const;

  boost::json::object to_json() const;
  std::string body() const;

 private:
  struct choice {
    std::string text;
    std::vector<engine::sample_result> tokens;
    std::optional<engine::finish_reason> finish;
    std::string message;
    std::int64_t num_output_tokens = 0;
  };

  response_context context_;
  std::vector<choice> choices_;
  std::int64_t num_prompt_tokens_ = 0;
};

}  // namespace glm4::http
