#include <catch2/catch.hpp>

#include <random>

#include "model/tokenizer/bpe_model.hpp"
#include "tests/model/tokenizer/tokenizer_fixtures.hpp"

using namespace glm4::model;

namespace {

// a=0 b=1 c=2 ab=3 bc=4 abc=5, with (b, c) merging before (a, b).
bpe_model toy_model(bool ignore_merges) {
  bpe_model m;
  const char* tokens[] = {"a", "b", "c", "ab", "bc", "abc"};
  for (token_id id = 0; id < 6; ++id) m.add_token(id, tokens[id]);
  m.add_merge(1, 2, 0, 4);  // b c -> bc
  m.add_merge(0, 1, 1, 3);  // a b -> ab
  m.add_merge(3, 2, 2, 5);  // ab c -> abc
  m.set_ignore_merges(ignore_merges);
  m.finalize();
  return m;
}

std::vector<token_id> encode(const bpe_model& m, std::string_view piece) {
  std::vector<token_id> ids;
  m.encode(piece, ids);
  return ids;
}

}  // namespace

TEST_CASE("merges apply lowest rank first, leftmost on a tie", "[tokenizer][bpe]") {
  const bpe_model m = toy_model(false);
  CHECK(encode(m, "abc") == std::vector<token_id>{0, 4});  // bc wins, and a + bc has no merge
  CHECK(encode(m, "abab") == std::vector<token_id>{3, 3});
  CHECK(encode(m, "bbb") == std::vector<token_id>{1, 1, 1});
  CHECK(encode(m, "ab") == std::vector<token_id>{3});
  CHECK(encode(m, "a?b") == std::vector<token_id>{3});  // a byte without a token is dropped
}

TEST_CASE("ignore_merges emits a piece that is a token whole", "[tokenizer][bpe]") {
  const bpe_model m = toy_model(true);
  CHECK(encode(m, "abc") == std::vector<token_id>{5});
  CHECK(encode(m, "abcabc") == std::vector<token_id>{0, 4, 0, 4});
}

TEST_CASE("the heap merge agrees with the rescanning merge", "[tokenizer][bpe]") {
  // A model whose merges are the fixture's: rebuild it from the tiktoken file.
  const tokenizer& tok = testing::json_tokenizer();
  bpe_model m;
  for (token_id id = 0; id < 1010; ++id) m.add_token(id, *tok.id_to_piece(id));
  // Merges as TikTokenConverter writes them: every split of a token, ranked by the token.
  for (token_id id = 0; id < 1010; ++id) {
    const std::string piece = *tok.id_to_piece(id);
    for (std::size_t cut = 1; cut < piece.size(); ++cut) {
      const auto left = m.find(piece.substr(0, cut));
      const auto right = m.find(piece.substr(cut));
      if (left && right) m.add_merge(*left, *right, static_cast<std::uint32_t>(id), id);
    }
  }
  m.finalize();
  std::mt19937 rng(1234);
  const std::string alphabet = "  eeetaoinshrdlu,.th\n";
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<token_id> symbols(static_cast<std::size_t>(2 + rng() % 600));
    for (token_id& s : symbols) s = *m.find(std::string(1, alphabet[rng() % alphabet.size()]));
    std::vector<token_id> small = symbols;
    std::vector<token_id> large = symbols;
    m.merge_small(small);
    m.merge_large(large);
    REQUIRE(small == large);
  }
}
