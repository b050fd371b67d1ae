// The streamed reply: engine events of one request turned into SSE "data: {...}\n\n" events.
//   chat:       a role chunk per choice, content deltas, finish_reason on each choice's last
//               chunk, a usage chunk (choices: []) when include_usage, then "data: [DONE]".
//   completion: the same without the role chunks; "text" instead of "delta".
// An error ends the stream with a data event holding an error object, then [DONE].
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "engine/request_output.hpp"
#include "http/api_error.hpp"
#include "http/openai_response.hpp"

namespace glm4::http {

inline constexpr std::string_view sse_done = "data: [DONE]\n\n";
/// A comment line: clients ignore it, proxies see traffic on an idle stream.
inline constexpr std::string_view sse_keep_alive = ": keep-alive\n\n";
inline constexpr std::string_view sse_content_type = "text/event-stream";

/// "data: <payload>\n\n"; payload must hold no newline (serialized JSON never does).
std::string sse_data(std::string_view payload);
std::string sse_data(const boost::json::object& payload);

class stream_encoder {
 public:
  explicit stream_encoder(response_context context);

  /// The events to send as soon as the request is accepted (chat: the role chunks).
  std::string start();
  /// The events for one engine event; ends with the usage chunk and [DONE] once every choice
  /// has finished, or with an error event and [DONE] when one failed. Empty after done().
  std::string add(const engine::request_output& event);
  /// Ends the stream early (the engine or scheduler failed the request).
  std::string fail(const api_error& error);

  bool done() const { return done_; }

 private:
  boost::json::object chunk(boost::json::array choices) const;
  std::string finish_stream();

  struct choice {
    bool finished = false;
    std::size_t text_offset = 0;  // completion logprobs
    std::int64_t num_output_tokens = 0;
  };

  response_context context_;
  std::vector<choice> choices_;
  std::int64_t num_prompt_tokens_ = 0;
  bool done_ = false;
};

}  // namespace glm4::http
