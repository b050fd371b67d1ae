// Chat and completions bodies: OpenAI field semantics and a 400 naming the field for each mistake.
#include <catch2/catch.hpp>

#include "http/openai_request.hpp"
#include "tests/http/http_test_support.hpp"

namespace glm4::http {
namespace {

using testing::expect_error;
using testing::expect_ok;

request_limits limits() {
  request_limits l;
  l.vocab_size = 1024;
  l.served_models = {"glm-4-9b-chat"};
  return l;
}

openai_request chat(const std::string& body) { return expect_ok(parse_chat_request(body, limits())); }
openai_request completion(const std::string& body) { return expect_ok(parse_completion_request(body, limits())); }
api_error chat_error(const std::string& body) { return expect_error(parse_chat_request(body, limits())); }
api_error completion_error(const std::string& body) { return expect_error(parse_completion_request(body, limits())); }

TEST_CASE("a full chat body maps onto sampling_params", "[http][request]") {
  const auto r = chat(R"({"model": "glm-4-9b-chat", "messages": [
      {"role": "system", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": null}],
    "max_tokens": 10, "max_completion_tokens": 20, "temperature": 0.5, "top_p": 0.9, "n": 2,
    "stop": ["a", "b"], "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.5,
    "logit_bias": {"5": 10, "7": -100}, "logprobs": true, "top_logprobs": 3,
    "stream": true, "stream_options": {"include_usage": true}, "user": "u1",
    "top_k": -1, "min_p": 0.1, "repetition_penalty": 1.1, "min_tokens": 2, "ignore_eos": true,
    "stop_token_ids": [3, 4], "some_future_field": {"deep": [1, 2]}})");
  CHECK(r.kind == api_kind::chat);
  CHECK(r.model == "glm-4-9b-chat");
  REQUIRE(r.messages.size() == 3);
  CHECK(r.messages[0].role == "system");
  CHECK(r.messages[1].content == "hi\nthere");
  CHECK(r.messages[2].role == "assistant");
  CHECK(r.messages[2].content.empty());
  const auto& p = r.params;
  CHECK(p.max_tokens == 20);  // max_completion_tokens wins
  CHECK(p.temperature == 0.5);
  CHECK(p.top_p == 0.9);
  CHECK(p.n == 2);
  CHECK(p.stop == std::vector<std::string>{"a", "b"});
  CHECK(p.seed == 7u);
  CHECK(p.presence_penalty == 0.5);
  CHECK(p.frequency_penalty == -0.5);
  CHECK(p.logit_bias == std::map<token_id, float>{{5, 10.0f}, {7, -100.0f}});
  CHECK(p.logprobs);
  CHECK(p.top_logprobs == 3);
  CHECK(r.stream);
  CHECK(r.include_usage);
  CHECK(r.user == "u1");
  CHECK(p.top_k == 0);
  CHECK(p.min_p == 0.1);
  CHECK(p.repetition_penalty == 1.1);
  CHECK(p.min_tokens == 2);
  CHECK(p.ignore_eos);
  CHECK(p.stop_token_ids == std::vector<token_id>{3, 4});
}

TEST_CASE("chat defaults", "[http][request]") {
  const auto r = chat(R"({"messages": [{"role": "user", "content": "x"}], "stop": "END", "seed": -1})");
  CHECK_FALSE(r.model);
  CHECK_FALSE(r.params.max_tokens);
  CHECK_FALSE(r.stream);
  CHECK_FALSE(r.include_usage);
  CHECK_FALSE(r.params.logprobs);
  CHECK(r.params.n == 1);
  CHECK(r.params.stop == std::vector<std::string>{"END"});
  CHECK(r.params.seed == ~std::uint64_t{0});
  CHECK(chat(R"({"messages": [{"role": "developer", "content": "x"}], "max_tokens": 5.0})").messages[0].role ==
        "system");
}

TEST_CASE("completions: prompt forms, default max_tokens and integer logprobs", "[http][request]") {
  auto r = completion(R"({"prompt": "Once upon", "logprobs": 2})");
  CHECK(r.kind == api_kind::completion);
  CHECK(r.prompt_text == "Once upon");
  CHECK(r.params.max_tokens == 16);
  CHECK(r.params.logprobs);
  CHECK(r.params.top_logprobs == 2);
  CHECK(completion(R"({"prompt": [1, 2, 3], "max_tokens": 4})").prompt_token_ids == std::vector<token_id>{1, 2, 3});
  CHECK(completion(R"({"prompt": [[4, 5]]})").prompt_token_ids == std::vector<token_id>{4, 5});
  CHECK(completion(R"({"prompt": ["single"]})").prompt_text == "single");
  r = completion(R"({"prompt": "x", "logprobs": 0})");
  CHECK(r.params.logprobs);
  CHECK(r.params.top_logprobs == 0);
  CHECK_FALSE(completion(R"({"prompt": "x", "logprobs": null})").params.logprobs);
}

struct error_case {
  const char* body;
  const char* param;
};

TEST_CASE("each wrong type or range is a 400 naming the field", "[http][request]") {
  const error_case chat_cases[] = {
      {R"({})", "messages"},
      {R"({"messages": []})", "messages"},
      {R"({"messages": "hi"})", "messages"},
      {R"({"messages": [{"content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "tool", "content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": 5}]})", "messages[1].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content[0].type"},
      {R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})", "messages[0].content[0].text"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": -1})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_p": 1.5})", "top_p"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_p": true})", "top_p"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 0})", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 1.5})", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0})", "max_completion_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1e12})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e"]})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": ["a", 1]})", "stop[1]"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": [""]})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "presence_penalty": 3})", "presence_penalty"},
      {R"({"messages": [{"role": "user", "content": "x"}], "frequency_penalty": -2.5})", "frequency_penalty"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"abc": 1}})", "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": 101}})", "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"5000": 1}})", "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": 1})", "logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21})", "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})", "stream"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}})",
       "stream_options"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream": true, "stream_options": {"include_usage": 1}})",
       "stream_options.include_usage"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_k": -2})", "top_k"},
      {R"({"messages": [{"role": "user", "content": "x"}], "min_p": 2})", "min_p"},
      {R"({"messages": [{"role": "user", "content": "x"}], "repetition_penalty": 0})", "repetition_penalty"},
      {R"({"messages": [{"role": "user", "content": "x"}], "min_tokens": 5, "max_tokens": 2})", "min_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "ignore_eos": 1})", "ignore_eos"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop_token_ids": [1, 2000]})", "stop_token_ids"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop_token_ids": ["a"]})", "stop_token_ids[0]"},
      {R"({"messages": [{"role": "user", "content": "x"}], "seed": "7"})", "seed"},
      {R"({"messages": [{"role": "user", "content": "x"}], "user": 5})", "user"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", "tools"},
  };
  for (const auto& c : chat_cases) {
    INFO(c.body);
    const api_error e = chat_error(c.body);
    CHECK(e.status == 400);
    CHECK(e.type == "invalid_request_error");
    CHECK(e.param == std::optional<std::string>(c.param));
    CHECK(e.code);
    CHECK_FALSE(e.message.empty());
  }
  const error_case completion_cases[] = {
      {R"({})", "prompt"},
      {R"({"prompt": ""})", "prompt"},
      {R"({"prompt": []})", "prompt"},
      {R"({"prompt": ["a", "b"]})", "prompt"},
      {R"({"prompt": [1, "a"]})", "prompt[1]"},
      {R"({"prompt": [1, 1024]})", "prompt[1]"},
      {R"({"prompt": [-1]})", "prompt[0]"},
      {R"({"prompt": "x", "logprobs": true})", "logprobs"},
      {R"({"prompt": "x", "logprobs": 21})", "logprobs"},
      {R"({"prompt": "x", "echo": true})", "echo"},
      {R"({"prompt": "x", "suffix": "y"})", "suffix"},
  };
  for (const auto& c : completion_cases) {
    INFO(c.body);
    const api_error e = completion_error(c.body);
    CHECK(e.status == 400);
    CHECK(e.param == std::optional<std::string>(c.param));
  }
}

TEST_CASE("the error message names the field the client sent", "[http][request]") {
  const auto e = chat_error(R"({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0})");
  CHECK_THAT(e.message, Catch::StartsWith("max_completion_tokens must be >= 1"));
  CHECK_THAT(chat_error(R"({"messages": [{"role": "user", "content": "x"}], "top_p": "a"})").message,
             Catch::Contains("'top_p' must be a number, got a string"));
}

TEST_CASE("bad bodies: not JSON, not an object, too deep, invalid UTF-8", "[http][request]") {
  for (const std::string body : {"", "{", "[1, 2]", "\"text\"", "{\"messages\": [}", "{\"a\": 1,}"}) {
    INFO(body);
    const auto e = chat_error(body);
    CHECK(e.status == 400);
    CHECK_FALSE(e.param);
    CHECK(e.code == "invalid_json");
  }
  std::string deep = R"({"messages": [{"role": "user", "content": "x"}], "x": )";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  deep += "}";
  CHECK_THAT(chat_error(deep).message, Catch::Contains("deeper than 32"));
  const std::string bad_utf8 = "{\"messages\": [{\"role\": \"user\", \"content\": \"a\xff\xfe\"}]}";
  CHECK(chat_error(bad_utf8).code == "invalid_json");
}

TEST_CASE("mangled bodies never throw and fail as 400 or parse", "[http][request]") {
  const std::string valid = R"({"model": "glm-4-9b-chat", "messages": [{"role": "user", "content": [{"type": "text",
      "text": "h\u00e9llo"}]}], "max_tokens": 8, "stop": ["x"], "logit_bias": {"3": 1.5}, "logprobs": true,
      "top_logprobs": 2, "n": 2, "stream": true, "stream_options": {"include_usage": true}})";
  REQUIRE(std::holds_alternative<openai_request>(parse_chat_request(valid, limits())));
  std::uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::size_t>(state >> 33);
  };
  int num_errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string body = valid;
    for (int edits = 1 + static_cast<int>(next() % 3); edits > 0; --edits) {
      const std::size_t pos = next() % body.size();
      switch (next() % 3) {
        case 0: body[pos] = static_cast<char>(next() % 256); break;
        case 1: body.erase(pos, 1 + next() % 8); break;
        default: body = body.substr(0, pos) + "{}[]\",:0-e\xff"[next() % 11] + body.substr(pos); break;
      }
      if (body.empty()) body.push_back('{');
    }
    api_result<openai_request> result = invalid_request("unset");
    REQUIRE_NOTHROW(result = parse_chat_request(body, limits()));
    if (const auto* error = std::get_if<api_error>(&result)) {
      ++num_errors;
      CHECK((error->status == 400 || error->status == 404));
      CHECK_FALSE(error->message.empty());
    }
  }
  CHECK(num_errors > 1000);
}

TEST_CASE("an unknown model is a 404", "[http][request]") {
  const auto e = chat_error(R"({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]})");
  CHECK(e.status == 404);
  CHECK(e.code == "model_not_found");
  CHECK(e.param == "model");
}

TEST_CASE("prompt ids: the chat template, a prefixed string prompt, or ids as given", "[http][request]") {
  const auto& tok = testing::fixture_tokenizer();
  const auto chat_request = chat(R"({"messages": [{"role": "user", "content": "hello"}]})");
  CHECK(prompt_token_ids(chat_request, tok) == tok.encode_chat(chat_request.messages));
  CHECK(prompt_token_ids(chat_request, tok) == tok.encode("[gMASK]<sop><|user|>\nhello<|assistant|>"));

  std::vector<token_id> expected{*tok.gmask_id(), *tok.sop_id()};
  tok.encode("hello world", expected);
  CHECK(prompt_token_ids(completion(R"({"prompt": "hello world"})"), tok) == expected);
  CHECK(prompt_token_ids(completion(R"({"prompt": "[gMASK]<sop>hello world"})"), tok) == expected);
  CHECK(prompt_token_ids(completion(R"({"prompt": [9, 8]})"), tok) == std::vector<token_id>{9, 8});
}

}  // namespace
}  // namespace glm4::http
