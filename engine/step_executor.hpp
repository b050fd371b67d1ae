// The boundary between deciding and executing a step: the scheduler's side builds a batch, the
// executor runs the model and samples on its device, and only token ids (and the logprobs asked
// for) come back, never logits. Device actors implement it remotely later.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/block_manager.hpp"
#include "engine/kv_pool.hpp"
#include "engine/sampler.hpp"
#include "engine/sampling_params.hpp"
#include "kernels/comm/group_ticket.hpp"
#include "model/step_batch.hpp"

namespace glm4::engine {

/// How to sample logit row r of a step (rows as batch.logit_rows, one input each; a row index
/// may repeat there to draw several choices from one position).
struct row_sampling {
  const sampling_params* params = nullptr;  // outlives execute()
  sequence_sampling_state state;             // views valid during execute()
};

/// A token fed into a step that was planned before it was sampled: batch.token_ids[token_index]
/// holds engine::pending_token_id until the device puts in what it sampled for row
/// `previous_row` of the step before.
struct fed_token {
  std::int32_t token_index = 0;
  std::int32_t previous_row = 0;
  bool operator==(const fed_token&) const = default;
};

/// What one rank of a pipeline stage hands on after its part of a step.
struct stage_output {
  std::vector<float> hidden;           // (T, H) row-major for the next stage: a non-last stage's rank 0
  std::vector<sample_result> samples;  // one per logit row: the last stage's rank 0
};

class step_executor {
 public:
  virtual ~step_executor() = default;

  /// Performs `copies` (KV block copy-on-write), runs `batch`, and samples every logit row with
  /// its input; returns one result per row, in row order. Throws on failure (the caller fails the
  /// step's requests).
  virtual std::vector<sample_result> execute(const model::step_batch& batch, std::span<const block_copy> copies,
                                             std::span<const row_sampling> rows) = 0;

  /// One rank's part of a step in a pipeline: `hidden_in` (T, H) comes from the previous stage
  /// (empty on the first). An executor of a whole model runs the whole step and samples.
  virtual stage_output execute_stage(const model::step_batch& batch, std::span<const block_copy> copies,
                                     std::span<const row_sampling> rows, std::span<const float> hidden_in) {
    if (!hidden_in.empty()) throw std::logic_error("step_executor: a whole-model executor takes no hidden states");
    return {{}, execute(batch, copies, rows)};
  }

  /// Puts the tokens `fed` asks for into batch.token_ids before the step runs. `previous` is
  /// what this device returned for the step before (empty on a rank that does not sample). Every
  /// rank of a stage calls it; by default the tokens come from `previous` (a whole-model
  /// executor); throws std::logic_error when a row is missing.
  virtual void fill_fed_tokens(model::step_batch& batch, std::span<const fed_token> fed,
                               std::span<const sample_result> previous) {
    for (const fed_token& token : fed) {
      if (token.previous_row < 0 || static_cast<std::size_t>(token.previous_row) >= previous.size() ||
          token.token_index < 0 || token.token_index >= batch.num_tokens())
        throw std::logic_error("a planned-ahead step feeds row " + std::to_string(token.previous_row) +
                               " of a previous step that returned " + std::to_string(previous.size()) + " samples");
      batch.token_ids[static_cast<std::size_t>(token.token_index)] = previous[static_cast<std::size_t>(token.previous_row)].token;
    }
  }

  /// What this device can give the KV pool; by default nothing limits it (an executor that keeps
  /// no KV pages of its own).
  virtual memory_report memory() const { return {}; }
  /// Makes the KV pool num_blocks blocks (the scheduler's size_kv_pool over every device's
  /// report), before the first step. Throws when it cannot.
  virtual void allocate_kv_pool(std::int64_t num_blocks) { (void)num_blocks; }

  /// A new id for the collective group of this device's tensor-parallel stage (asked of one rank).
  virtual std::vector<std::uint8_t> make_group_id() {
    throw std::logic_error("this device has no tensor-parallel peers to make a group with");
  }
  /// Joins this device's stage group with the ticket the head handed out; returns once the device
  /// can take part in the stage's collectives. Throws when it cannot.
  virtual void join_group(const kernels::comm::group_ticket& ticket) {
    (void)ticket;
    throw std::logic_error("this device has no tensor-parallel peers to join");
  }
};

}  // namespace glm4::engine
