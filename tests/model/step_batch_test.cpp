// step_batch: add_sequence lays out rows, slots and block tables; validate catches what would
// make a kernel read or write the wrong cache slot.
#include <catch2/catch.hpp>

#include "model/step_batch.hpp"

namespace glm4::model {

TEST_CASE("add_sequence appends rows, slots and a widened block table", "[model][step_batch]") {
  step_batch batch;
  batch.block_size = 4;
  const std::vector<std::int32_t> prompt{10, 11, 12, 13, 14, 15};
  add_sequence(batch, prompt, 0, std::vector<std::int32_t>{3, 1}, logit_rows::last);
  const std::vector<std::int32_t> next{20};
  add_sequence(batch, next, 9, std::vector<std::int32_t>{0, 5, 2}, logit_rows::all);

  CHECK(batch.token_ids == std::vector<std::int32_t>{10, 11, 12, 13, 14, 15, 20});
  CHECK(batch.positions == std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 9});
  // Position p of a sequence lives in block blocks[p / 4] at offset p % 4.
  CHECK(batch.slot_mapping == std::vector<std::int32_t>{12, 13, 14, 15, 4, 5, 2 * 4 + 1});
  CHECK(batch.query_start == std::vector<std::int32_t>{0, 6, 7});
  CHECK(batch.context_len == std::vector<std::int32_t>{6, 10});
  CHECK(batch.max_blocks_per_seq == 3);
  CHECK(batch.block_table == std::vector<std::int32_t>{3, 1, 0, 0, 5, 2});
  CHECK(batch.logit_rows == std::vector<std::int32_t>{5, 6});
  CHECK_NOTHROW(validate(batch));
}

TEST_CASE("add_sequence refuses a sequence its blocks cannot hold", "[model][step_batch]") {
  step_batch batch;
  batch.block_size = 4;
  const std::vector<std::int32_t> tokens{1, 2, 3};
  CHECK_THROWS_AS(add_sequence(batch, tokens, 6, std::vector<std::int32_t>{0, 1}, logit_rows::none), std::invalid_argument);
  CHECK_THROWS_AS(add_sequence(batch, tokens, -1, std::vector<std::int32_t>{0, 1}, logit_rows::none), std::invalid_argument);
}

TEST_CASE("validate rejects inconsistent batches", "[model][step_batch]") {
  step_batch good;
  good.block_size = 4;
  const std::vector<std::int32_t> tokens{1, 2, 3, 4, 5};
  add_sequence(good, tokens, 0, std::vector<std::int32_t>{1, 0}, logit_rows::last);
  REQUIRE_NOTHROW(validate(good));

  step_batch bad = good;
  bad.slot_mapping[4] = 3;  // disagrees with block 0 offset 0
  CHECK_THROWS_AS(validate(bad), std::invalid_argument);
  bad = good;
  bad.positions[2] = 5;  // outside the context of 5 tokens
  CHECK_THROWS_AS(validate(bad), std::invalid_argument);
  bad = good;
  bad.query_start.back() = 4;
  CHECK_THROWS_AS(validate(bad), std::invalid_argument);
  bad = good;
  bad.logit_rows = {5};
  CHECK_THROWS_AS(validate(bad), std::invalid_argument);
  bad = good;
  bad.positions.pop_back();
  CHECK_THROWS_AS(validate(bad), std::invalid_argument);
  bad = good;
  bad.context_len[0] = 9;  // more than two blocks of 4
  CHECK_THROWS_AS(validate(bad), std::invalid_argument);
}

}  // namespace glm4::model
