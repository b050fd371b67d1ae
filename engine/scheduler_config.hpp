// The knobs of continuous batching: pool size, per-step budgets and the admission watermark.
#pragma once

#include <cstdint>

namespace glm4::engine {

struct scheduler_config {
  std::int32_t num_blocks = 1024;  // KV blocks in the pool
  std::int32_t block_size = 16;    // tokens per block
  bool enable_prefix_caching = true;
  std::int32_t max_num_batched_tokens = 2048;  // tokens one step computes, prefill chunks included
  std::int32_t max_num_seqs = 64;              // sequences one step runs
  std::int64_t max_model_len = 4096;           // prompt + output tokens of one sequence
  bool fit_max_model_len_to_pool = false;      // size_kv_pool may lower max_model_len (it was not configured)
  double watermark = 0.01;  // fraction of the pool admission leaves free for running decodes

  /// Blocks admission keeps free: at least one when the pool has more than one.
  std::int32_t num_watermark_blocks() const;
};

}  // namespace glm4::engine
