// Non-streamed chat.completion and text_completion bodies.
#include "http/openai_response.hpp"

#include <algorithm>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "http/logprobs_json.hpp"

namespace glm4::http {

namespace json = boost::json;

std::string response_id(api_kind kind, std::uint64_t unique) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string id = kind == api_kind::chat ? "chatcmpl-" : "cmpl-";
  for (int shift = 60; shift >= 0; shift -= 4) id += digits[(unique >> shift) & 0xF];
  return id;
}

response_context make_response_context(const openai_request& request, std::string id, std::int64_t created,
                                       std::string model, const model::tokenizer* tokenizer) {
  response_context context;
  context.kind = request.kind;
  context.id = std::move(id);
  context.created = created;
  context.model = std::move(model);
  context.n = request.params.n;
  context.logprobs = request.params.logprobs;
  context.include_usage = request.include_usage;
  context.tokenizer = tokenizer;
  return context;
}

json::object usage_json(const usage_counts& usage) {
  json::object object;
  object["prompt_tokens"] = usage.num_prompt_tokens;
  object["completion_tokens"] = usage.num_completion_tokens;
  object["total_tokens"] = usage.num_prompt_tokens + usage.num_completion_tokens;
  return object;
}

std::string finish_reason_text(engine::finish_reason reason) { return std::string(engine::to_string(reason)); }

completion_accumulator::completion_accumulator(response_context context)
    : context_(std::move(context)), choices_(static_cast<std::size_t>(std::max(context_.n, 1))) {}

void completion_accumulator::add(const engine::request_output& event) {
  if (event.index < 0 || static_cast<std::size_t>(event.index) >= choices_.size()) return;
  choice& c = choices_[static_cast<std::size_t>(event.index)];
  c.text += event.text;
  c.tokens.insert(c.tokens.end(), event.tokens.begin(), event.tokens.end());
  c.num_output_tokens = event.num_output_tokens;
  num_prompt_tokens_ = std::max(num_prompt_tokens_, event.num_prompt_tokens);
  if (event.finish) {
    c.finish = event.finish;
    c.message = event.message;
  }
}

bool completion_accumulator::finished() const {
  return std::all_of(choices_.begin(), choices_.end(), [](const choice& c) { return c.finish.has_value(); });
}

std::optional<api_error> completion_accumulator::error() const {
  for (const choice& c : choices_)
    if (c.finish == engine::finish_reason::error)
      return server_error(c.message.empty() ? "generation failed" : "generation failed: " + c.message);
  return std::nullopt;
}

usage_counts completion_accumulator::usage() const {
  usage_counts usage;
  usage.num_prompt_tokens = num_prompt_tokens_;
  for (const choice& c : choices_) usage.num_completion_tokens += c.num_output_tokens;
  return usage;
}

json::object completion_accumulator::to_json() const {
  const bool chat = context_.kind == api_kind::chat;
  json::array choices;
  for (std::size_t i = 0; i < choices_.size(); ++i) {
    const choice& c = choices_[i];
    json::object out;
    out["index"] = static_cast<std::int64_t>(i);
    if (chat) {
      json::object message;
      message["role"] = "assistant";
      message["content"] = c.text;
      out["message"] = std::move(message);
    } else {
      out["text"] = c.text;
    }
    if (!context_.logprobs) {
      out["logprobs"] = nullptr;
    } else if (chat) {
      out["logprobs"] = chat_logprobs(c.tokens, context_.tokenizer);
    } else {
      std::size_t offset = 0;
      out["logprobs"] = completion_logprobs(c.tokens, context_.tokenizer, offset);
    }
    out["finish_reason"] = c.finish ? json::value(finish_reason_text(*c.finish)) : json::value(nullptr);
    choices.push_back(std::move(out));
  }
  json::object body;
  body["id"] = context_.id;
  body["object"] = chat ? "chat.completion" : "text_completion";
  body["created"] = context_.created;
  body["model"] = context_.model;
  body["choices"] = std::move(choices);
  body["usage"] = usage_json(usage());
  return body;
}

std::string completion_accumulator::body() const { return json::serialize(to_json()); }

}  // namespace glm4::http
