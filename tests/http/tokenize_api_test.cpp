// /tokenize, /detokenize and /v1/models bodies over the fixture tokenizer.
#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "http/tokenize_api.hpp"
#include "tests/http/http_test_support.hpp"

namespace glm4::http {
namespace {

namespace json = boost::json;
using testing::expect_error;
using testing::expect_ok;
using testing::fixture_tokenizer;

request_limits limits() {
  request_limits l;
  l.vocab_size = static_cast<std::int64_t>(fixture_tokenizer().vocab_size());
  l.served_models = {"glm"};
  return l;
}

std::vector<token_id> ids_of(const json::value& body) {
  std::vector<token_id> ids;
  for (const auto& v : body.at("tokens").as_array()) ids.push_back(static_cast<token_id>(v.as_int64()));
  return ids;
}

TEST_CASE("tokenize a prompt or chat messages", "[http][tokenize]") {
  const auto& tok = fixture_tokenizer();
  const auto plain = json::parse(expect_ok(tokenize_body(R"({"prompt": "hello world"})", limits(), tok, 4096)));
  std::vector<token_id> expected{*tok.gmask_id(), *tok.sop_id()};
  tok.encode("hello world", expected);
  CHECK(ids_of(plain) == expected);
  CHECK(plain.at("count").as_int64() == std::ssize(expected));
  CHECK(plain.at("max_model_len").as_int64() == 4096);

  const auto bare = json::parse(
      expect_ok(tokenize_body(R"({"prompt": "hello world", "add_special_tokens": false})", limits(), tok, 4096)));
  CHECK(ids_of(bare) == tok.encode("hello world"));

  const auto chat = json::parse(expect_ok(tokenize_body(
      R"({"model": "glm", "messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": false})",
      limits(), tok, 4096)));
  const std::vector<model::chat_message> messages{{"user", "hi"}};
  CHECK(ids_of(chat) == tok.encode_chat(messages, false));
}

TEST_CASE("detokenize round-trips and names bad ids", "[http][tokenize]") {
  const auto& tok = fixture_tokenizer();
  const auto ids = tok.encode("round trip");
  json::array tokens;
  for (auto id : ids) tokens.push_back(id);
  json::object request;
  request["tokens"] = tokens;
  const auto body = json::parse(expect_ok(detokenize_body(json::serialize(request), limits(), tok)));
  CHECK(body.at("prompt") == "round trip");

  const auto e = expect_error(detokenize_body(R"({"tokens": [1, 99999]})", limits(), tok));
  CHECK(e.status == 400);
  CHECK(e.param == "tokens[1]");
  CHECK(expect_error(detokenize_body(R"({})", limits(), tok)).param == "tokens");
  CHECK(expect_error(tokenize_body(R"({"prompt": 5})", limits(), tok, 1)).param == "prompt");
  CHECK(expect_error(tokenize_body(R"({"model": "x", "prompt": "a"})", limits(), tok, 1)).status == 404);
  CHECK(expect_error(tokenize_body("[]", limits(), tok, 1)).code == "invalid_json");
}

TEST_CASE("the model list", "[http][tokenize]") {
  const auto body = json::parse(models_body({"glm-4-9b-chat", "glm"}, 1700000000, 8192));
  CHECK(body.at("object") == "list");
  const auto& data = body.at("data").as_array();
  REQUIRE(data.size() == 2);
  CHECK(data[0] == json::parse(R"({"id": "glm-4-9b-chat", "object": "model", "created": 1700000000,
      "owned_by": "glm4-actor", "root": "glm-4-9b-chat", "max_model_len": 8192})"));
  CHECK(data[1].at("id") == "glm");
}

}  // namespace
}  // namespace glm4::http
