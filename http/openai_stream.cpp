// SSE chunks of a streamed reply.
#include "http/openai_stream.hpp"

#include <algorithm>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "http/logprobs_json.hpp"

namespace glm4::http {

namespace json = boost::json;

std::string sse_data(std::string_view payload) {
  std::string event;
  event.reserve(payload.size() + 8);
  event += "data: ";
  event += payload;
  event += "\n\n";
  return event;
}

std::string sse_data(const json::object& payload) { return sse_data(json::serialize(payload)); }

stream_encoder::stream_encoder(response_context context)
    : context_(std::move(context)), choices_(static_cast<std::size_t>(std::max(context_.n, 1))) {}

json::object stream_encoder::chunk(json::array choices) const {
  const bool chat = context_.kind == api_kind::chat;
  json::object body;
  body["id"] = context_.id;
  body["object"] = chat ? "chat.completion.chunk" : "text_completion";
  body["created"] = context_.created;
  body["model"] = context_.model;
  body["choices"] = std::move(choices);
  // OpenAI: with include_usage every other chunk carries "usage": null.
  if (context_.include_usage) body["usage"] = nullptr;
  return body;
}

std::string stream_encoder::start() {
  if (context_.kind != api_kind::chat) return {};
  std::string events;
  for (std::size_t i = 0; i < choices_.size(); ++i) {
    json::object delta;
    delta["role"] = "assistant";
    delta["content"] = "";
    json::object out;
    out["index"] = static_cast<std::int64_t>(i);
    out["delta"] = std::move(delta);
    out["logprobs"] = nullptr;
    out["finish_reason"] = nullptr;
    events += sse_data(chunk(json::array{std::move(out)}));
  }
  return events;
}

std::string stream_encoder::add(const engine::request_output& event) {
  if (done_ || event.index < 0 || static_cast<std::size_t>(event.index) >= choices_.size()) return {};
  if (event.finish == engine::finish_reason::error)
    return fail(server_error(event.message.empty() ? "generation failed" : "generation failed: " + event.message));
  choice& c = choices_[static_cast<std::size_t>(event.index)];
  if (c.finished) return {};
  c.num_output_tokens = event.num_output_tokens;
  num_prompt_tokens_ = std::max(num_prompt_tokens_, event.num_prompt_tokens);

  const bool has_logprobs = context_.logprobs && !event.tokens.empty();
  std::string events;
  // Text held back for a possible stop string gives an event with nothing to send yet.
  if (!event.text.empty() || has_logprobs || event.finish) {
    const bool chat = context_.kind == api_kind::chat;
    json::object out;
    out["index"] = static_cast<std::int64_t>(event.index);
    if (chat) {
      json::object delta;
      if (!event.text.empty()) delta["content"] = event.text;
      out["delta"] = std::move(delta);
    } else {
      out["text"] = event.text;
    }
    if (!has_logprobs)
      out["logprobs"] = nullptr;
    else if (chat)
      out["logprobs"] = chat_logprobs(event.tokens, context_.tokenizer);
    else
      out["logprobs"] = completion_logprobs(event.tokens, context_.tokenizer, c.text_offset);
    out["finish_reason"] = event.finish ? json::value(finish_reason_text(*event.finish)) : json::value(nullptr);
    events += sse_data(chunk(json::array{std::move(out)}));
  }
  if (event.finish) {
    c.finished = true;
    if (std::all_of(choices_.begin(), choices_.end(), [](const choice& x) { return x.finished; }))
      events += finish_stream();
  }
  return events;
}

std::string stream_encoder::finish_stream() {
  done_ = true;
  std::string events;
  if (context_.include_usage) {
    usage_counts usage;
    usage.num_prompt_tokens = num_prompt_tokens_;
    for (const choice& c : choices_) usage.num_completion_tokens += c.num_output_tokens;
    json::object body = chunk(json::array{});
    body["usage"] = usage_json(usage);
    events += sse_data(body);
  }
  events += sse_done;
  return events;
}

std::string stream_encoder::fail(const api_error& error) {
  if (done_) return {};
  done_ = true;
  return sse_data(to_json(error)) + std::string(sse_done);
}

}  // namespace glm4::http
