// /tokenize, /detokenize and /v1/models bodies.
#include "http/tokenize_api.hpp"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "http/json_fields.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/utf8.hpp"

namespace glm4::http {

namespace json = boost::json;

api_result<std::string> tokenize_body(std::string_view body_text, const request_limits& limits,
                                      const model::tokenizer& tokenizer, std::int64_t max_model_len) {
  try {
    const json::object body = parse_json_body(body_text, limits);
    read_model(body, limits);
    const bool add_special = get_bool(body, "add_special_tokens").value_or(true);
    std::vector<token_id> ids;
    if (find_field(body, "messages")) {
      const auto messages = read_chat_messages(body);
      ids = tokenizer.encode_chat(messages, get_bool(body, "add_generation_prompt").value_or(true));
    } else {
      const auto prompt = get_string(body, "prompt");
      if (!prompt)
        fail_field("prompt", "'prompt' (a string) or 'messages' is required", "missing_required_parameter");
      if (add_special && prompt->rfind("[gMASK]", 0) != 0 && tokenizer.gmask_id() && tokenizer.sop_id()) {
        ids.push_back(*tokenizer.gmask_id());
        ids.push_back(*tokenizer.sop_id());
      }
      tokenizer.encode(*prompt, ids);
    }
    json::array tokens;
    for (token_id id : ids) tokens.push_back(id);
    json::object out;
    out["count"] = static_cast<std::int64_t>(ids.size());
    out["max_model_len"] = max_model_len;
    out["tokens"] = std::move(tokens);
    return json::serialize(out);
  } catch (const api_exception& e) {
    return e.error();
  }
}

api_result<std::string> detokenize_body(std::string_view body_text, const request_limits& limits,
                                        const model::tokenizer& tokenizer) {
  try {
    const json::object body = parse_json_body(body_text, limits);
    read_model(body, limits);
    const auto* tokens = find_field(body, "tokens");
    if (!tokens) fail_field("tokens", "'tokens' is required", "missing_required_parameter");
    const auto& items = as_array(*tokens, "tokens");
    std::vector<token_id> ids;
    const auto vocab = static_cast<std::int64_t>(tokenizer.vocab_size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      const std::string path = "tokens[" + std::to_string(i) + "]";
      const std::int64_t id = as_integer(items[i], path);
      if (id < 0 || id >= vocab)
        fail_field(path, "'" + path + "' must be a token id in [0, " + std::to_string(vocab) + "), got " +
                             std::to_string(id));
      ids.push_back(static_cast<token_id>(id));
    }
    json::object out;
    // A cut through a multi-byte character decodes to U+FFFD, as vLLM's decode does.
    out["prompt"] = model::utf8::replace_invalid(tokenizer.decode(ids));
    return json::serialize(out);
  } catch (const api_exception& e) {
    return e.error();
  }
}

std::string models_body(const std::vector<std::string>& served_models, std::int64_t created,
                        std::int64_t max_model_len) {
  json::array data;
  for (const auto& name : served_models) {
    json::object model;
    model["id"] = name;
    model["object"] = "model";
    model["created"] = created;
    model["owned_by"] = "glm4-actor";
    model["root"] = name;
    model["max_model_len"] = max_model_len;
    data.push_back(std::move(model));
  }
  json::object out;
  out["object"] = "list";
  out["data"] = std::move(data);
  return json::serialize(out);
}

}  // namespace glm4::http
