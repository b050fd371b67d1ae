// One step as a message: what the scheduler's executor call carries to a device actor, by value,
// since the scheduler's sequences do not live where the device runs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/step_executor.hpp"

namespace glm4::actors {

/// How to sample one logit row. The sequence's tokens are copied only when a penalty reads them
/// (engine::needs_token_history): a plan's size then does not grow with the context.
struct row_plan {
  engine::sampling_params params;
  std::vector<engine::token_id> prompt_token_ids;
  std::vector<engine::token_id> output_token_ids;
  std::uint64_t seed = 0;
  std::uint64_t num_output_tokens = 0;  // the sampler's step index, also when the lists are left out
  bool operator==(const row_plan&) const = default;
};

struct step_plan {
  model::step_batch batch;
  std::vector<engine::block_copy> copies;
  std::vector<row_plan> rows;  // one per batch.logit_rows entry
  std::vector<engine::fed_token> fed;  // tokens the device fills in from its previous step's samples
  bool operator==(const step_plan&) const = default;
};

/// The sampled ids (and logprobs asked for), one per row: all a device ever returns.
using step_results = std::vector<engine::sample_result>;

step_plan make_step_plan(const model::step_batch& batch, std::span<const engine::block_copy> copies,
                         std::span<const engine::row_sampling> rows, std::span<const engine::fed_token> fed = {});

/// The executor's view of a plan's rows; valid while `plan` is.
std::vector<engine::row_sampling> row_samplings(const step_plan& plan);

}  // namespace glm4::actors
