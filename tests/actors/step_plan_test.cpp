// make_step_plan copies a row's token history only when a penalty reads it, and the device side
// sees the same step index (the seeded draw) either way.
#include <catch2/catch.hpp>

#include "actors/step_plan.hpp"

namespace glm4::actors {

TEST_CASE("a step plan carries token histories only for rows with penalties", "[actors][step_plan]") {
  const std::vector<engine::token_id> prompt{1, 2, 3, 4}, output{7, 8, 9};
  engine::sampling_params plain, penalised;
  plain.temperature = penalised.temperature = 0.8;
  penalised.presence_penalty = 0.5;
  const engine::row_sampling rows[] = {{&plain, {prompt, output, 11, std::nullopt}}, {&penalised, {prompt, output, 12, std::nullopt}}};
  model::step_batch batch;
  model::add_sequence(batch, std::vector<std::int32_t>{9}, 7, std::vector<std::int32_t>{0}, model::logit_rows::last);
  batch.logit_rows.push_back(0);

  const step_plan plan = make_step_plan(batch, {}, rows);
  REQUIRE(plan.rows.size() == 2);
  CHECK(plan.rows[0].prompt_token_ids.empty());
  CHECK(plan.rows[0].output_token_ids.empty());
  CHECK(plan.rows[1].prompt_token_ids == prompt);
  CHECK(plan.rows[1].output_token_ids == output);

  const auto seen = row_samplings(plan);
  for (std::size_t r = 0; r < 2; ++r) {
    CAPTURE(r);
    CHECK(seen[r].state.num_output() == output.size());  // the draw index of step 3
    CHECK(seen[r].state.seed == rows[r].state.seed);
    CHECK(*seen[r].params == *rows[r].params);
  }
}

TEST_CASE("penalties are what needs a token history", "[actors][step_plan]") {
  engine::sampling_params p;
  CHECK_FALSE(engine::needs_token_history(p));
  p.top_k = 5;
  p.min_tokens = 3;  // reads only the count
  CHECK_FALSE(engine::needs_token_history(p));
  p.repetition_penalty = 1.1;
  CHECK(engine::needs_token_history(p));
  p.repetition_penalty = 1.0;
  p.frequency_penalty = -0.5;
  CHECK(engine::needs_token_history(p));
}

}  // namespace glm4::actors
