// Sequence token views, block counts and forking.
#include "engine/sequence.hpp"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <vector>

namespace glm4::engine {

TEST_CASE("a sequence splits its tokens into prompt and output", "[sequence]") {
  sequence seq(7, {1, 2, 3});
  seq.append_token(9);
  CHECK(seq.id() == 7);
  CHECK(seq.num_tokens() == 4);
  CHECK(seq.num_prompt_tokens() == 3);
  CHECK(seq.num_output_tokens() == 1);
  CHECK(std::vector<token_id>(seq.prompt_token_ids().begin(), seq.prompt_token_ids().end()) ==
        std::vector<token_id>{1, 2, 3});
  CHECK(std::vector<token_id>(seq.output_token_ids().begin(), seq.output_token_ids().end()) ==
        std::vector<token_id>{9});
  CHECK(seq.last_token() == 9);
  CHECK(seq.status == sequence_status::waiting);
}

TEST_CASE("a sequence's distinct prompt ids are sorted, once each, and stay the prompt's as it grows", "[sequence]") {
  const auto distinct_of = [](const sequence& s) {
    return std::vector<token_id>(s.distinct_prompt_token_ids().begin(), s.distinct_prompt_token_ids().end());
  };
  sequence seq(1, {5, 3, 5, 9, 3, 0});
  seq.append_token(42);  // output tokens before the first use: they are not the prompt's
  seq.append_token(1);
  const sequence child = seq.fork_as(2);
  CHECK(distinct_of(seq) == std::vector<token_id>{0, 3, 5, 9});
  seq.append_token(7);
  CHECK(distinct_of(seq) == std::vector<token_id>{0, 3, 5, 9});
  CHECK(distinct_of(child) == std::vector<token_id>{0, 3, 5, 9});
}

TEST_CASE("num_blocks rounds up", "[sequence]") {
  sequence seq(1, std::vector<token_id>(16, 5));
  CHECK(seq.num_blocks(16) == 1);
  seq.append_token(1);
  CHECK(seq.num_blocks(16) == 2);
  CHECK(seq.num_blocks(4) == 5);
}

TEST_CASE("fork_as copies tokens and status but no blocks", "[sequence]") {
  sequence parent(1, {1, 2});
  parent.append_token(3);
  parent.status = sequence_status::running;
  parent.block_table = {4};
  parent.num_cached_tokens = 1;
  const sequence child = parent.fork_as(2);
  CHECK(child.id() == 2);
  CHECK(child.num_prompt_tokens() == 2);
  CHECK(child.num_output_tokens() == 1);
  CHECK(child.status == sequence_status::running);
  CHECK(child.block_table.empty());
  CHECK(child.num_cached_tokens == 0);
}

TEST_CASE("a sequence needs a prompt", "[sequence]") {
  CHECK_THROWS_AS(sequence(1, {}), std::invalid_argument);
}

}  // namespace glm4::engine
