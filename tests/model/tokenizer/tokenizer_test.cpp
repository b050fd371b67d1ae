#include <catch2/catch.hpp>

#include "model/tokenizer/utf8.hpp"
#include "tests/model/tokenizer/tokenizer_fixtures.hpp"

using namespace glm4::model;
using namespace glm4::model::testing;

namespace {

// Every corpus case must give HF's ids; the first mismatches are printed in full.
void check_corpus(const tokenizer& tok) {
  const std::vector<corpus_case> cases = corpus_cases();
  REQUIRE(cases.size() > 1000);
  std::size_t num_mismatches = 0;
  std::size_t num_invalid = 0;
  for (const corpus_case& c : cases) {
    num_invalid += c.is_valid_text ? 0 : 1;
    const std::vector<token_id> ids = tok.encode(c.input);
    if (ids == c.ids) continue;
    if (++num_mismatches <= 10) {
      UNSCOPED_INFO("corpus_cases.jsonl line " << c.line << ":\n  expected " << to_string(c.ids)
                                               << "\n  got      " << to_string(ids));
    }
  }
  CHECK(num_invalid > 0);
  CHECK(num_mismatches == 0);
}

}  // namespace

TEST_CASE("tokenizer.json: every corpus case gives HF's ids", "[tokenizer][fixture]") {
  check_corpus(json_tokenizer());
}

TEST_CASE("tokenizer.model: every corpus case gives HF's ids", "[tokenizer][fixture]") {
  check_corpus(tiktoken_tokenizer());
}

TEST_CASE("tokenizer.model without tokenizer_config.json puts the specials after the ranks",
          "[tokenizer][fixture]") {
  scratch_dir dir;
  std::filesystem::copy_file(fixture_dir() / "tokenizer.model", dir.path() / "tokenizer.model");
  const tokenizer tok = tokenizer::load(dir.path());
  CHECK(tok.source() == (dir.path() / "tokenizer.model").string());
  CHECK(tok.vocab_size() == 1024);
  for (std::size_t i = 0; i < std::size(glm4_special_tokens); ++i) {
    CHECK(tok.token_to_id(glm4_special_tokens[i]) == static_cast<token_id>(1010 + i));
  }
  check_corpus(tok);
}

TEST_CASE("load() prefers tokenizer.json", "[tokenizer][fixture]") {
  const tokenizer tok = tokenizer::load(fixture_dir());
  CHECK(tok.source() == (fixture_dir() / "tokenizer.json").string());
  CHECK(tok.chat_template() == chat_template_kind::glm4_chat);
}

TEST_CASE("decode(encode(x)) gives x back", "[tokenizer][fixture]") {
  for (const tokenizer* tok : {&json_tokenizer(), &tiktoken_tokenizer()}) {
    for (const corpus_case& c : corpus_cases()) {
      CAPTURE(c.line);
      const std::string expected = c.is_valid_text ? c.input : utf8::replace_invalid(c.input);
      CHECK(tok->decode(c.ids) == expected);
      CHECK(tok->decode(tok->encode(c.input)) == expected);
    }
  }
}

TEST_CASE("both loaders agree on every piece", "[tokenizer][fixture]") {
  const tokenizer& a = json_tokenizer();
  const tokenizer& b = tiktoken_tokenizer();
  REQUIRE(a.vocab_size() == b.vocab_size());
  for (token_id id = 0; id < static_cast<token_id>(a.vocab_size()); ++id) {
    CAPTURE(id);
    CHECK(a.id_to_piece(id) == b.id_to_piece(id));
    CHECK(a.is_special(id) == b.is_special(id));
  }
}

TEST_CASE("special ids and accessors", "[tokenizer][fixture]") {
  for (const tokenizer* tok : {&json_tokenizer(), &tiktoken_tokenizer()}) {
    CHECK(tok->vocab_size() == 1024);
    CHECK(tok->gmask_id() == 1012);
    CHECK(tok->sop_id() == 1014);
    CHECK(tok->eos_id() == 1010);
    CHECK(tok->end_of_reply_ids() == std::vector<token_id>{1010, 1017, 1019});
    CHECK(tok->is_special(1010));
    CHECK(tok->is_special(1023));
    CHECK_FALSE(tok->is_special(5));
    CHECK_FALSE(tok->is_special(5000));
    CHECK(tok->token_to_id("<|user|>") == 1017);
    CHECK(tok->token_to_id("\n") == 198);
    CHECK_FALSE(tok->token_to_id("no such token"));
    CHECK(tok->id_to_piece(1017) == "<|user|>");
    CHECK(tok->id_to_piece(198) == "\n");
    CHECK_FALSE(tok->id_to_piece(1024));
    CHECK_FALSE(tok->id_to_piece(-1));
    CHECK(tok->split_pattern() == glm4_split_pattern);
  }
}

TEST_CASE("decode skips ids without a piece and, when asked, special ids", "[tokenizer][fixture]") {
  const tokenizer& tok = json_tokenizer();
  const std::vector<token_id> ids = {1012, 1014, 39, 151551, 72, -3, 1010};
  CHECK(tok.decode(ids) == "[gMASK]<sop>Hi<|endoftext|>");
  CHECK(tok.decode(ids, true) == "Hi");
}

TEST_CASE("special token text in the input becomes the special token", "[tokenizer][fixture]") {
  const tokenizer& tok = json_tokenizer();
  const std::vector<token_id> ids = tok.encode("a<|user|><|user|>b<|endoftext");
  REQUIRE(ids.size() >= 4);
  CHECK(ids[1] == 1017);
  CHECK(ids[2] == 1017);
  CHECK(tok.decode(ids) == "a<|user|><|user|>b<|endoftext");
}
