// OpenAI's logprobs shapes.
#include "http/logprobs_json.hpp"

#include <algorithm>

#include <boost/json/array.hpp>

#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/utf8.hpp"

namespace glm4::http {
namespace {

namespace json = boost::json;

// JSON has no -inf; vLLM clamps the same way.
double finite_logprob(float logprob) { return std::max(static_cast<double>(logprob), -9999.0); }

std::string token_bytes(engine::token_id id, const model::tokenizer* tokenizer) {
  if (!tokenizer) return "token_id:" + std::to_string(id);
  std::string bytes;
  tokenizer->append_piece(id, bytes);
  return bytes;
}

json::object chat_entry(engine::token_id id, float logprob, const model::tokenizer* tokenizer) {
  const std::string bytes = token_bytes(id, tokenizer);
  json::array byte_values;
  for (unsigned char c : bytes) byte_values.push_back(static_cast<std::int64_t>(c));
  json::object entry;
  entry["token"] = model::utf8::replace_invalid(bytes);
  entry["logprob"] = finite_logprob(logprob);
  entry["bytes"] = std::move(byte_values);
  return entry;
}

}  // namespace

std::string token_text(engine::token_id id, const model::tokenizer* tokenizer) {
  return model::utf8::replace_invalid(token_bytes(id, tokenizer));
}

json::object chat_logprobs(std::span<const engine::sample_result> tokens, const model::tokenizer* tokenizer) {
  json::array content;
  for (const auto& token : tokens) {
    json::object entry = chat_entry(token.token, token.logprob.value_or(0.0f), tokenizer);
    json::array top;
    for (const auto& alternative : token.top_logprobs)
      top.push_back(chat_entry(alternative.id, alternative.logprob, tokenizer));
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  json::object result;
  result["content"] = std::move(content);
  return result;
}

json::object completion_logprobs(std::span<const engine::sample_result> tokens, const model::tokenizer* tokenizer,
                                 std::size_t& text_offset) {
  json::array texts, logprobs, tops, offsets;
  for (const auto& token : tokens) {
    const std::string text = token_text(token.token, tokenizer);
    texts.push_back(json::string(text));
    logprobs.push_back(finite_logprob(token.logprob.value_or(0.0f)));
    // As vLLM: the sampled token is listed among the alternatives even when it is not in the top k.
    json::object top;
    for (const auto& alternative : token.top_logprobs)
      top[token_text(alternative.id, tokenizer)] = finite_logprob(alternative.logprob);
    if (!top.contains(text)) top[text] = finite_logprob(token.logprob.value_or(0.0f));
    tops.push_back(std::move(top));
    offsets.push_back(static_cast<std::uint64_t>(text_offset));
    text_offset += text.size();
  }
  json::object result;
  result["tokens"] = std::move(texts);
  result["token_logprobs"] = std::move(logprobs);
  result["top_logprobs"] = std::move(tops);
  result["text_offset"] = std::move(offsets);
  return result;
}

}  // namespace glm4::http
