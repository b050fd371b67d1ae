// Whole replies and SSE chunks from the same engine events: the streamed deltas concatenate to
// the whole reply, and the shapes are OpenAI's.
#include <catch2/catch.hpp>

#include <map>

#include <boost/json/parse.hpp>

#include "engine/llm_engine.hpp"
#include "http/openai_response.hpp"
#include "http/openai_stream.hpp"
#include "tests/engine/fake_executor.hpp"
#include "tests/http/http_test_support.hpp"

namespace glm4::http {
namespace {

namespace json = boost::json;
using engine::finish_reason;
using engine::request_output;

/// The payloads of an SSE stream; "[DONE]" stays a string.
std::vector<json::value> parse_sse(const std::string& stream) {
  std::vector<json::value> events;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::size_t end = stream.find("\n\n", pos);
    REQUIRE(end != std::string::npos);
    const std::string event = stream.substr(pos, end - pos);
    pos = end + 2;
    if (event.rfind(':', 0) == 0) continue;  // comment
    REQUIRE(event.rfind("data: ", 0) == 0);
    const std::string payload = event.substr(6);
    events.push_back(payload == "[DONE]" ? json::value(payload) : json::parse(payload));
  }
  return events;
}

request_output event(std::int32_t index, std::string text, std::vector<token_id> ids, std::int64_t num_output,
                     std::optional<finish_reason> finish = std::nullopt) {
  request_output e;
  e.request = 1;
  e.index = index;
  for (token_id id : ids) e.tokens.push_back({id, -0.5f, {}});
  e.text = std::move(text);
  e.finish = finish;
  e.num_prompt_tokens = 7;
  e.num_output_tokens = num_output;
  return e;
}

response_context context(api_kind kind, std::int32_t n, bool include_usage, bool logprobs = false) {
  response_context c;
  c.kind = kind;
  c.id = kind == api_kind::chat ? "chatcmpl-1" : "cmpl-1";
  c.created = 1700000000;
  c.model = "glm-4-9b-chat";
  c.n = n;
  c.include_usage = include_usage;
  c.logprobs = logprobs;
  return c;
}

/// What a client rebuilds from a stream: text, finish reason and logprobs per choice, and usage.
struct replayed {
  std::map<std::int64_t, std::string> text;
  std::map<std::int64_t, std::string> finish;
  std::map<std::int64_t, json::array> logprobs;
  std::map<std::int64_t, bool> saw_role;
  std::optional<json::object> usage;
  bool done = false;
  std::optional<json::object> error;
};

replayed replay(const std::string& stream, api_kind kind) {
  replayed r;
  const bool chat = kind == api_kind::chat;
  for (const auto& payload : parse_sse(stream)) {
    REQUIRE_FALSE(r.done);  // nothing after [DONE]
    if (payload.is_string()) {
      r.done = true;
      continue;
    }
    const auto& object = payload.as_object();
    if (object.contains("error")) {
      r.error = object.at("error").as_object();
      continue;
    }
    CHECK(object.at("object") == (chat ? "chat.completion.chunk" : "text_completion"));
    const auto& choices = object.at("choices").as_array();
    if (choices.empty()) {
      r.usage = object.at("usage").as_object();
      continue;
    }
    for (const auto& choice_value : choices) {
      const auto& choice = choice_value.as_object();
      const std::int64_t index = choice.at("index").as_int64();
      CHECK(r.finish.count(index) == 0);  // nothing after a choice's finish chunk
      if (chat) {
        const auto& delta = choice.at("delta").as_object();
        if (delta.contains("role")) r.saw_role[index] = true;
        if (delta.contains("content")) r.text[index] += delta.at("content").as_string().c_str();
      } else {
        r.text[index] += choice.at("text").as_string().c_str();
      }
      if (!choice.at("logprobs").is_null()) {
        const auto& lp = choice.at("logprobs").as_object();
        const auto& entries = chat ? lp.at("content").as_array() : lp.at("tokens").as_array();
        for (const auto& entry : entries) r.logprobs[index].push_back(entry);
      }
      if (!choice.at("finish_reason").is_null()) r.finish[index] = choice.at("finish_reason").as_string().c_str();
    }
  }
  return r;
}

void check_stream_matches_whole(const std::vector<request_output>& events, const response_context& ctx) {
  completion_accumulator whole(ctx);
  stream_encoder encoder(ctx);
  std::string stream = encoder.start();
  for (const auto& e : events) {
    whole.add(e);
    stream += encoder.add(e);
  }
  REQUIRE(whole.finished());
  REQUIRE(encoder.done());
  const json::object body = whole.to_json();
  const replayed r = replay(stream, ctx.kind);
  CHECK(r.done);
  const bool chat = ctx.kind == api_kind::chat;
  const auto& choices = body.at("choices").as_array();
  REQUIRE(std::ssize(choices) == ctx.n);
  for (const auto& choice_value : choices) {
    const auto& choice = choice_value.as_object();
    const std::int64_t index = choice.at("index").as_int64();
    const auto& content = chat ? choice.at("message").at("content") : choice.at("text");
    CHECK(r.text.count(index) == 1);
    CHECK(r.text.at(index) == content.as_string().c_str());
    CHECK(r.finish.at(index) == choice.at("finish_reason").as_string().c_str());
    if (chat) CHECK(r.saw_role.at(index));
    if (ctx.logprobs) {
      const auto& lp = choice.at("logprobs").as_object();
      CHECK(r.logprobs.at(index) == (chat ? lp.at("content").as_array() : lp.at("tokens").as_array()));
    } else {
      CHECK(choice.at("logprobs").is_null());
    }
  }
  if (ctx.include_usage) {
    REQUIRE(r.usage);
    CHECK(*r.usage == body.at("usage").as_object());
  } else {
    CHECK_FALSE(r.usage);
  }
}

TEST_CASE("a whole chat reply has OpenAI's shape", "[http][response]") {
  completion_accumulator whole(context(api_kind::chat, 1, false));
  whole.add(event(0, "Hel", {5}, 1));
  whole.add(event(0, "", {6}, 2));  // held back for a stop string
  whole.add(event(0, "lo", {7}, 3, finish_reason::stop));
  REQUIRE(whole.finished());
  CHECK_FALSE(whole.error());
  CHECK(response_id(api_kind::chat, 0x2a) == "chatcmpl-000000000000002a");
  CHECK(response_id(api_kind::completion, ~0ull) == "cmpl-ffffffffffffffff");
  const auto body = json::parse(whole.body());
  CHECK(body == json::parse(R"({"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
      "model": "glm-4-9b-chat", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
      "logprobs": null, "finish_reason": "stop"}],
      "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})"));
}

TEST_CASE("a stream: role chunk, deltas, finish chunk, usage chunk, [DONE]", "[http][stream]") {
  stream_encoder encoder(context(api_kind::chat, 1, true));
  std::string stream = encoder.start();
  stream += encoder.add(event(0, "Hi", {5}, 1));
  stream += sse_keep_alive;  // a comment: parse_sse skips it as clients do
  CHECK(sse_keep_alive.front() == ':');
  CHECK(encoder.add(event(0, "", {6}, 2)).empty());  // held-back text sends nothing
  stream += encoder.add(event(0, "!", {7}, 3, finish_reason::length));
  CHECK(encoder.done());
  const auto events = parse_sse(stream);
  REQUIRE(events.size() == 5);
  CHECK(events[0] == json::parse(R"({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
      "model": "glm-4-9b-chat", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
      "logprobs": null, "finish_reason": null}], "usage": null})"));
  CHECK(events[1].at("choices").at(0).at("delta") == json::parse(R"({"content": "Hi"})"));
  CHECK(events[2].at("choices").at(0).at("finish_reason") == "length");
  CHECK(events[3].at("choices").as_array().empty());
  CHECK(events[3].at("usage") == json::parse(R"({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})"));
  CHECK(events[4] == "[DONE]");
  CHECK(stream.substr(stream.size() - sse_done.size()) == sse_done);
  CHECK(encoder.add(event(0, "late", {8}, 4)).empty());
}

TEST_CASE("streamed deltas equal the whole reply, n > 1 interleaved", "[http][stream]") {
  const std::vector<request_output> events = {
      event(0, "a", {1}, 1),          event(1, "x", {2}, 1), event(1, "", {3}, 2),
      event(0, "bc", {4, 5}, 3),      event(1, "yz", {6}, 3, finish_reason::stop),
      event(0, "", {7}, 4, finish_reason::length)};
  for (api_kind kind : {api_kind::chat, api_kind::completion})
    for (bool usage : {false, true})
      for (bool logprobs : {false, true}) check_stream_matches_whole(events, context(kind, 2, usage, logprobs));
}

TEST_CASE("an engine error: a 500 for the whole reply, an error event then [DONE] mid-stream", "[http][stream]") {
  const auto ctx = context(api_kind::chat, 1, true);
  completion_accumulator whole(ctx);
  stream_encoder encoder(ctx);
  std::string stream = encoder.start();
  for (const auto& e : {event(0, "ok", {1}, 1), event(0, "", {}, 1, finish_reason::error)}) {
    whole.add(e);
    stream += encoder.add(e);
  }
  REQUIRE(whole.error());
  CHECK(whole.error()->status == 500);
  CHECK(whole.error()->type == "server_error");
  const auto r = replay(stream, api_kind::chat);
  CHECK(r.done);
  REQUIRE(r.error);
  CHECK(r.error->at("type") == "server_error");
  CHECK(r.error->contains("message"));
  CHECK(r.error->at("param").is_null());
  CHECK_FALSE(r.usage);

  stream_encoder failed(ctx);
  const auto events = parse_sse(failed.start() + failed.fail(overloaded("queue full")));
  REQUIRE(events.size() == 3);
  CHECK(events[1].at("error").at("code") == "overloaded");
  CHECK(events[2] == "[DONE]");
  CHECK(failed.fail(overloaded("again")).empty());
}

TEST_CASE("logprobs in OpenAI's shapes, with token texts and bytes", "[http][response]") {
  const auto& tok = testing::fixture_tokenizer();
  const token_id id = tok.encode("hello").front();
  const std::string piece = tok.decode(std::vector<token_id>{id});
  request_output e = event(0, piece, {}, 1, finish_reason::stop);
  e.tokens.push_back({id, -0.25f, {{id, -0.25f}, {id + 1, -1.5f}}});
  auto chat_ctx = context(api_kind::chat, 1, false, true);
  chat_ctx.tokenizer = &tok;
  completion_accumulator chat_whole(chat_ctx);
  chat_whole.add(e);
  const auto entry = chat_whole.to_json().at("choices").at(0).at("logprobs").at("content").at(0);
  CHECK(entry.at("token") == piece.c_str());
  CHECK(entry.at("logprob").as_double() == -0.25);
  CHECK(entry.at("bytes").as_array().size() == piece.size());
  REQUIRE(entry.at("top_logprobs").as_array().size() == 2);
  CHECK(entry.at("top_logprobs").at(1).at("logprob").as_double() == -1.5);

  auto text_ctx = context(api_kind::completion, 1, false, true);
  text_ctx.tokenizer = &tok;
  completion_accumulator text_whole(text_ctx);
  text_whole.add(e);
  const auto lp = text_whole.to_json().at("choices").at(0).at("logprobs");
  CHECK(lp.at("tokens") == json::array{piece.c_str()});
  CHECK(lp.at("token_logprobs") == json::array{-0.25});
  CHECK(lp.at("text_offset") == json::array{0});
  CHECK(lp.at("top_logprobs").at(0).as_object().size() == 2);

  request_output minus_inf = event(0, "", {}, 1, finish_reason::stop);
  minus_inf.tokens.push_back({id, -std::numeric_limits<float>::infinity(), {}});
  completion_accumulator clamped(chat_ctx);
  clamped.add(minus_inf);
  CHECK(clamped.to_json().at("choices").at(0).at("logprobs").at("content").at(0).at("logprob").as_double() == -9999.0);
}

TEST_CASE("a seeded engine run streams exactly what the whole reply holds", "[http][stream]") {
  const auto& tok = testing::fixture_tokenizer();
  request_limits limits;
  limits.vocab_size = static_cast<std::int64_t>(tok.vocab_size());
  const auto request = testing::expect_ok(parse_chat_request(
      R"({"messages": [{"role": "user", "content": "tell me a story"}], "n": 2, "seed": 11,
          "temperature": 0.9, "max_tokens": 24, "logprobs": true, "top_logprobs": 2, "stop": ["e"],
          "stream": true, "stream_options": {"include_usage": true}})",
      limits));
  const auto prompt = prompt_token_ids(request, tok);
  engine::engine_config config;
  config.scheduler.num_blocks = 64;
  config.scheduler.block_size = 4;
  config.scheduler.max_num_batched_tokens = 64;
  config.scheduler.max_num_seqs = 8;
  config.scheduler.max_model_len = 256;
  config.eos_token_ids = tok.end_of_reply_ids();
  config.vocab_size = limits.vocab_size;
  // Two engines with the same seed: the streamed and the whole reply come from separate runs.
  auto run = [&] {
    engine::testing::fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size,
                                            config.vocab_size, config.eos_token_ids);
    engine::llm_engine engine(config, executor, &tok);
    REQUIRE_FALSE(engine.add_request(1, prompt, request.params));
    std::vector<request_output> events;
    for (int i = 0; i < 1000 && engine.has_unfinished(); ++i)
      for (auto& e : engine.step()) events.push_back(std::move(e));
    return events;
  };
  const auto first = run();
  const auto second = run();
  auto ctx = make_response_context(request, "chatcmpl-9", 1, "glm", &tok);
  completion_accumulator whole(ctx);
  for (const auto& e : first) whole.add(e);
  stream_encoder encoder(ctx);
  std::string stream = encoder.start();
  for (const auto& e : second) stream += encoder.add(e);
  REQUIRE(whole.finished());
  REQUIRE(encoder.done());
  const auto body = whole.to_json();
  const auto r = replay(stream, api_kind::chat);
  CHECK(r.text.at(0) + r.text.at(1) != "");
  CHECK(r.text.at(0) != r.text.at(1));  // seed + index: the choices differ
  for (std::int64_t i = 0; i < 2; ++i) {
    const auto& choice = body.at("choices").at(static_cast<std::size_t>(i));
    CHECK(r.text.at(i) == choice.at("message").at("content").as_string().c_str());
    CHECK(r.finish.at(i) == choice.at("finish_reason").as_string().c_str());
    CHECK(r.logprobs.at(i) == choice.at("logprobs").at("content").as_array());
  }
  REQUIRE(r.usage);
  CHECK(*r.usage == body.at("usage").as_object());
  CHECK(body.at("usage").at("prompt_tokens").as_int64() == std::ssize(prompt));
  // The same feed through check_stream_matches_whole as well.
  check_stream_matches_whole(first, ctx);
}

}  // namespace
}  // namespace glm4::http
