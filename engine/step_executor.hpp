// The boundary between deciding and executing a step: the scheduler's side builds a batch, the
// executor runs the model and samples on its device, and only token ids (and the logprobs asked
// for) come back, never logits. Device actors implement it remotely later.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "engine/block_manager.hpp"
#include "engine/kv_pool.hpp"
#include "engine/sampler.hpp"
#include "engine/sampling_params.hpp"
#include "model/step_batch.hpp"

namespace glm4::engine {

/// How to sample logit row r of a step (rows as batch.logit_rows, one input each; a row index
/// may repeat there to draw several choices from one position).
struct row_sampling {
  const sampling_params* params = nullptr;  // outlives execute()
  sequence_sampling_state state;             // views valid during execute()
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

  /// What this device can give the KV pool; by default nothing limits it (an executor that keeps
  /// no KV pages of its own).
  virtual memory_report memory() const { return {}; }
  /// Makes the KV pool num_blocks blocks (the scheduler's size_kv_pool over every device's
  /// report), before the first step. Throws when it cannot.
  virtual void allocate_kv_pool(std::int64_t num_blocks) { (void)num_blocks; }
};

}  // namespace glm4::engine
