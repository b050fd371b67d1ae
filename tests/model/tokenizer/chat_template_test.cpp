#include <catch2/catch.hpp>

#include "model/tokenizer/chat_template.hpp"
#include "model/tokenizer/tokenizer_config.hpp"
#include "tests/model/tokenizer/tokenizer_fixtures.hpp"

using namespace glm4::model;
using namespace glm4::model::testing;

TEST_CASE("every chat case renders and encodes as transformers does", "[tokenizer][chat][fixture]") {
  const auto lines = read_jsonl(fixture_dir() / "chat_cases.jsonl");
  REQUIRE(lines.size() > 10);
  for (const tokenizer* tok : {&json_tokenizer(), &tiktoken_tokenizer()}) {
    for (const jsonl_line& line : lines) {
      CAPTURE(line.number);
      std::vector<chat_message> messages;
      for (const boost::json::value& m : line.value.at("messages").as_array()) {
        messages.push_back({std::string(m.at("role").as_string()), std::string(m.at("content").as_string())});
      }
      CHECK(tok->render_chat(messages) == std::string(line.value.at("text").as_string()));
      const std::vector<token_id> expected = ids_of(line.value.at("ids"));
      const std::vector<token_id> ids = tok->encode_chat(messages);
      INFO("expected " << to_string(expected) << "\ngot      " << to_string(ids));
      CHECK(ids == expected);
    }
  }
}

TEST_CASE("the template's shape", "[tokenizer][chat]") {
  CHECK(render_glm4_chat({}) == "[gMASK]<sop><|assistant|>");
  const std::vector<chat_message> chat = {
      {"system", "S"}, {"user", ""}, {"user", "Q"}, {"assistant", "A"}, {"observation", "O"}};
  CHECK(render_glm4_chat(chat) ==
        "[gMASK]<sop><|system|>\nS<|user|>\nQ<|assistant|>\nA<|observation|>\nO<|assistant|>");
  CHECK(render_glm4_chat(chat, false) ==
        "[gMASK]<sop><|system|>\nS<|user|>\nQ<|assistant|>\nA<|observation|>\nO");
}

TEST_CASE("an unknown role is an error naming the message", "[tokenizer][chat]") {
  const std::vector<chat_message> chat = {{"user", "hi"}, {"tool", "x"}};
  CHECK_THROWS_AS(render_glm4_chat(chat), tokenizer_error);
  CHECK_THROWS_WITH(render_glm4_chat(chat), Catch::Contains("chat message 1") && Catch::Contains("\"tool\""));
}

TEST_CASE("the fixture's template is recognised, others are not", "[tokenizer][chat][fixture]") {
  CHECK(read_tokenizer_config(fixture_dir() / "tokenizer_config.json").chat_template ==
        chat_template_kind::glm4_chat);
  CHECK(classify_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}") ==
        chat_template_kind::unrecognized);
}
