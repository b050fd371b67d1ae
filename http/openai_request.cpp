// OpenAI request bodies -> openai_request, with every rejection naming its field.
#include "http/openai_request.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>

#include "http/json_fields.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace glm4::http {
namespace {

namespace json = boost::json;
constexpr std::int64_t int32_min = std::numeric_limits<std::int32_t>::min();
constexpr std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();

}  // namespace

json::object parse_json_body(std::string_view body, const request_limits& limits) {
  json::parse_options options;
  options.max_depth = limits.max_depth;
  options.allow_invalid_utf8 = false;
  boost::system::error_code ec;
  json::value value = json::parse(body, ec, {}, options);
  if (ec == json::error::too_deep)
    throw api_exception(invalid_request("request body nests deeper than " + std::to_string(limits.max_depth) +
                                            " levels", std::nullopt, "invalid_json"));
  if (ec)
    throw api_exception(invalid_request("request body is not valid JSON: " + ec.message(), std::nullopt,
                                        "invalid_json"));
  if (!value.is_object())
    throw api_exception(invalid_request("request body must be a JSON object", std::nullopt, "invalid_json"));
  return std::move(value.get_object());
}

std::optional<std::string> read_model(const json::object& body, const request_limits& limits) {
  auto model = get_string(body, "model");
  if (!model || limits.served_models.empty()) return model;
  const auto& names = limits.served_models;
  if (std::find(names.begin(), names.end(), *model) == names.end()) {
    api_error error = not_found("The model '" + *model + "' does not exist.", "model_not_found");
    error.param = "model";
    throw api_exception(std::move(error));
  }
  return model;
}

namespace {

token_id read_token(const json::value& value, const std::string& path) {
  return to_int32(as_integer(value, path), path, int32_min, int32_max);
}

void read_stop(const json::object& body, const request_limits& limits, engine::sampling_params& params) {
  const auto* stop = find_field(body, "stop");
  if (!stop) return;
  if (stop->is_string()) {
    params.stop.emplace_back(stop->get_string());
    return;
  }
  const auto& items = as_array(*stop, "stop");
  if (items.size() > limits.max_stop)
    fail_field("stop", "'stop' holds at most " + std::to_string(limits.max_stop) + " strings, got " +
                           std::to_string(items.size()));
  for (std::size_t i = 0; i < items.size(); ++i)
    params.stop.emplace_back(as_string(items[i], "stop[" + std::to_string(i) + "]"));
}

void read_logit_bias(const json::object& body, engine::sampling_params& params) {
  const auto* bias = find_field(body, "logit_bias");
  if (!bias) return;
  for (const auto& [key, value] : as_object(*bias, "logit_bias")) {
    token_id id = 0;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (ec != std::errc() || end != key.data() + key.size() || key.empty())
      fail_field("logit_bias", "'logit_bias' keys must be token ids, got '" + std::string(key) + "'");
    params.logit_bias[id] = static_cast<float>(as_number(value, "logit_bias"));
  }
}

void read_sampling(const json::object& body, const request_limits& limits, engine::sampling_params& params) {
  if (auto v = get_number(body, "temperature")) params.temperature = *v;
  if (auto v = get_number(body, "top_p")) params.top_p = *v;
  if (auto v = get_number(body, "min_p")) params.min_p = *v;
  if (auto v = get_number(body, "presence_penalty")) params.presence_penalty = *v;
  if (auto v = get_number(body, "frequency_penalty")) params.frequency_penalty = *v;
  if (auto v = get_number(body, "repetition_penalty")) params.repetition_penalty = *v;
  if (auto v = get_integer(body, "top_k")) {
    if (*v < -1) fail_field("top_k", "'top_k' must be -1 (off), 0 (off) or positive, got " + std::to_string(*v));
    params.top_k = *v == -1 ? 0 : to_int32(*v, "top_k", 0, int32_max);
  }
  if (auto v = get_integer(body, "n")) params.n = to_int32(*v, "n", int32_min, int32_max);
  if (auto v = get_integer(body, "min_tokens")) params.min_tokens = to_int32(*v, "min_tokens", int32_min, int32_max);
  if (auto v = get_bool(body, "ignore_eos")) params.ignore_eos = *v;
  if (const auto* seed = find_field(body, "seed")) {
    // A negative seed is as good a seed as any: keep its bits.
    params.seed = seed->is_uint64() ? seed->get_uint64() : static_cast<std::uint64_t>(as_integer(*seed, "seed"));
  }
  if (const auto* ids = find_field(body, "stop_token_ids")) {
    const auto& items = as_array(*ids, "stop_token_ids");
    for (std::size_t i = 0; i < items.size(); ++i)
      params.stop_token_ids.push_back(read_token(items[i], "stop_token_ids[" + std::to_string(i) + "]"));
  }
  read_stop(body, limits, params);
  read_logit_bias(body, params);
}

void read_stream(const json::object& body, openai_request& request) {
  request.stream = get_bool(body, "stream").value_or(false);
  if (const auto* options = find_field(body, "stream_options")) {
    if (!request.stream)
      fail_field("stream_options", "'stream_options' is only allowed when 'stream' is true");
    const auto& object = as_object(*options, "stream_options");
    if (const auto* usage = find_field(object, "include_usage"))
      request.include_usage = as_bool(*usage, "stream_options.include_usage");
  }
}

void reject_unsupported(const json::object& body) {
  if (const auto* tools = find_field(body, "tools"); tools && !(tools->is_array() && tools->get_array().empty()))
    fail_field("tools", "tool calling is not supported by this server", "unsupported_parameter");
  if (const auto* format = find_field(body, "response_format")) {
    const auto& object = as_object(*format, "response_format");
    const auto* type = find_field(object, "type");
    if (type && as_string(*type, "response_format.type") != "text")
      fail_field("response_format.type", "only the 'text' response format is supported", "unsupported_parameter");
  }
}

std::string read_content(const json::value& content, const std::string& path) {
  if (content.is_string()) return std::string(content.get_string());
  const auto& parts = as_array(content, path);
  std::string text;
  for (std::size_t j = 0; j < parts.size(); ++j) {
    const std::string part_path = path + "[" + std::to_string(j) + "]";
    const auto& part = as_object(parts[j], part_path);
    const auto* type = find_field(part, "type");
    if (!type) fail_field(part_path + ".type", "'" + part_path + ".type' is required", "missing_required_parameter");
    if (as_string(*type, part_path + ".type") != "text")
      fail_field(part_path + ".type", "only 'text' content parts are supported", "unsupported_value");
    const auto* part_text = find_field(part, "text");
    if (!part_text) fail_field(part_path + ".text", "'" + part_path + ".text' is required", "missing_required_parameter");
    if (j > 0) text += '\n';
    text += as_string(*part_text, part_path + ".text");
  }
  return text;
}

}  // namespace

std::vector<model::chat_message> read_chat_messages(const json::object& body) {
  std::vector<model::chat_message> result;
  const auto* messages = find_field(body, "messages");
  if (!messages) fail_field("messages", "'messages' is required", "missing_required_parameter");
  const auto& items = as_array(*messages, "messages");
  if (items.empty()) fail_field("messages", "'messages' must hold at least one message");
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string path = "messages[" + std::to_string(i) + "]";
    const auto& message = as_object(items[i], path);
    const auto* role = find_field(message, "role");
    if (!role) fail_field(path + ".role", "'" + path + ".role' is required", "missing_required_parameter");
    std::string role_name(as_string(*role, path + ".role"));
    if (role_name == "developer") role_name = "system";  // OpenAI's newer name for the system role
    if (role_name != "system" && role_name != "user" && role_name != "assistant")
      fail_field(path + ".role", "'" + path + ".role' must be system, user or assistant, got '" + role_name + "'");
    const auto* content = find_field(message, "content");
    if (!content && role_name != "assistant")
      fail_field(path + ".content", "'" + path + ".content' is required", "missing_required_parameter");
    result.push_back({role_name, content ? read_content(*content, path + ".content") : std::string()});
  }
  return result;
}

namespace {

void read_prompt(const json::object& body, const request_limits& limits, openai_request& request) {
  const auto* prompt = find_field(body, "prompt");
  if (!prompt) fail_field("prompt", "'prompt' is required", "missing_required_parameter");
  const json::value* single = prompt;
  if (prompt->is_array()) {
    const auto& items = prompt->get_array();
    if (items.empty()) fail_field("prompt", "'prompt' must not be empty");
    // A list of strings or of id lists is a batch; a single-element one is just its element.
    if (items[0].is_string() || items[0].is_array()) {
      if (items.size() > 1)
        fail_field("prompt", "batched prompts are not supported; send one prompt per request", "unsupported_value");
      single = &items[0];
    }
  }
  if (single->is_string()) {
    if (single->get_string().empty()) fail_field("prompt", "'prompt' must not be empty");
    request.prompt_text = std::string(single->get_string());
    return;
  }
  const auto& ids = as_array(*single, "prompt");
  if (ids.empty()) fail_field("prompt", "'prompt' must not be empty");
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string path = "prompt[" + std::to_string(i) + "]";
    const token_id id = read_token(ids[i], path);
    if (id < 0 || (limits.vocab_size > 0 && id >= limits.vocab_size))
      fail_field(path, "'" + path + "' must be a token id in [0, " + std::to_string(limits.vocab_size) + "), got " +
                           std::to_string(id));
    request.prompt_token_ids.push_back(id);
  }
}

void read_chat_fields(const json::object& body, openai_request& request) {
  request.messages = read_chat_messages(body);
  auto& params = request.params;
  if (auto v = get_integer(body, "max_tokens")) params.max_tokens = to_int32(*v, "max_tokens", int32_min, int32_max);
  if (auto v = get_integer(body, "max_completion_tokens"))
    params.max_tokens = to_int32(*v, "max_completion_tokens", int32_min, int32_max);
  if (auto v = get_bool(body, "logprobs")) params.logprobs = *v;
  if (auto v = get_integer(body, "top_logprobs")) params.top_logprobs = to_int32(*v, "top_logprobs", int32_min, int32_max);
}

void read_completion_fields(const json::object& body, const request_limits& limits, openai_request& request) {
  read_prompt(body, limits, request);
  auto& params = request.params;
  params.max_tokens = limits.default_completion_max_tokens;
  if (auto v = get_integer(body, "max_tokens")) params.max_tokens = to_int32(*v, "max_tokens", int32_min, int32_max);
  if (auto v = get_integer(body, "logprobs")) {
    params.logprobs = true;
    params.top_logprobs = to_int32(*v, "logprobs", 0, engine::max_top_logprobs);
  }
  if (get_bool(body, "echo").value_or(false)) fail_field("echo", "'echo' is not supported", "unsupported_parameter");
  if (auto suffix = get_string(body, "suffix"); suffix && !suffix->empty())
    fail_field("suffix", "'suffix' is not supported", "unsupported_parameter");
  if (auto best_of = get_integer(body, "best_of"); best_of && *best_of != 1 && *best_of != params.n)
    fail_field("best_of", "'best_of' is not supported", "unsupported_parameter");
}

// validate() names the engine's parameter; say which request field the client actually sent.
std::string request_param(const std::string& param, const json::object& body, api_kind kind) {
  if (param == "max_tokens" && kind == api_kind::chat && find_field(body, "max_completion_tokens"))
    return "max_completion_tokens";
  if (param == "top_logprobs" && kind == api_kind::completion) return "logprobs";
  return param;
}

api_result<openai_request> parse_request(std::string_view body_text, const request_limits& limits, api_kind kind) {
  try {
    const json::object body = parse_json_body(body_text, limits);
    openai_request request;
    request.kind = kind;
    request.model = read_model(body, limits);
    if (kind == api_kind::chat)
      read_chat_fields(body, request);
    else
      read_completion_fields(body, limits, request);
    read_sampling(body, limits, request.params);
    read_stream(body, request);
    reject_unsupported(body);
    request.user = get_string(body, "user");
    const std::int64_t vocab = limits.vocab_size > 0 ? limits.vocab_size : std::numeric_limits<std::int64_t>::max();
    if (auto error = request.params.validate(vocab)) {
      std::string param = request_param(error->param, body, kind);
      std::string message = error->message;
      if (param != error->param && message.rfind(error->param, 0) == 0)
        message = param + message.substr(error->param.size());
      return invalid_request(std::move(message), std::move(param));
    }
    return request;
  } catch (const api_exception& e) {
    return e.error();
  }
}

}  // namespace

api_result<openai_request> parse_chat_request(std::string_view body, const request_limits& limits) {
  return parse_request(body, limits, api_kind::chat);
}

api_result<openai_request> parse_completion_request(std::string_view body, const request_limits& limits) {
  return parse_request(body, limits, api_kind::completion);
}

std::vector<token_id> prompt_token_ids(const openai_request& request, const model::tokenizer& tokenizer) {
  if (request.kind == api_kind::chat) return tokenizer.encode_chat(request.messages);
  if (!request.prompt_text) return request.prompt_token_ids;
  std::vector<token_id> ids;
  const std::string& text = *request.prompt_text;
  if (text.rfind("[gMASK]", 0) != 0 && tokenizer.gmask_id() && tokenizer.sop_id()) {
    ids.push_back(*tokenizer.gmask_id());
    ids.push_back(*tokenizer.sop_id());
  }
  tokenizer.encode(text, ids);
  return ids;
}

}  // namespace glm4::http
