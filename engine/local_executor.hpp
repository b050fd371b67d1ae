// The in-process executor: glm4_model on a backend, its paged KV cache, and the host sampler.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/sampler.hpp"
#include "engine/step_executor.hpp"
#include "model/glm4_model.hpp"
#include "model/kv_cache.hpp"

namespace glm4::engine {

class local_executor : public step_executor {
 public:
  /// A cache of num_blocks blocks of block_size tokens on the model's backend.
  local_executor(model::glm4_model& model, std::int64_t num_blocks, std::int32_t block_size,
                 std::vector<token_id> eos_token_ids, logprobs_source source = logprobs_source::raw);

  std::vector<sample_result> execute(const model::step_batch& batch, std::span<const block_copy> copies,
                                     std::span<const row_sampling> rows) override;

  /// The logits (R, V) row-major of the last step, on the host (tests compare them).
  const std::vector<float>& last_logits() const { return logits_; }
  model::kv_cache& cache() { return cache_; }

 private:
  void copy_block(const block_copy& copy);

  model::glm4_model& model_;
  model::kv_cache cache_;
  sampler sampler_;
  std::vector<float> logits_;
  std::vector<unsigned char> staging_;  // one block of one layer's keys or values
};

}  // namespace glm4::engine
