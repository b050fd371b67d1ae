// A single-sequence driver over glm4_model for the CLI and tests: it owns a small KV cache and a
// fixed block table over it, and feeds a prompt (prefill) then one token at a time (decode).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/glm4_model.hpp"
#include "model/kv_cache.hpp"
#include "model/step_batch.hpp"

namespace glm4::model {

class sequence_runner {
 public:
  /// A cache for max_tokens tokens in blocks of block_size on the model's backend.
  sequence_runner(glm4_model& model, std::int64_t max_tokens, std::int32_t block_size = 16);

  /// Appends `ids` in one step and returns the logits of its last position (V), or of every
  /// position (ids.size() x V, row-major) with logit_rows::all. Throws std::length_error when
  /// the sequence would outgrow max_tokens; the sequence is then unchanged.
  std::vector<float> prefill(std::span<const std::int32_t> ids, logit_rows wanted = logit_rows::last);
  /// Appends one token; returns the logits of its position (V).
  std::vector<float> decode(std::int32_t id);
  /// Forgets the sequence (the cache is reused).
  void reset() { num_tokens_ = 0; }

  std::int64_t num_tokens() const { return num_tokens_; }
  std::int64_t max_tokens() const { return cache_.num_slots(); }

 private:
  glm4_model& model_;
  kv_cache cache_;
  std::vector<std::int32_t> blocks_;
  std::int64_t num_tokens_ = 0;
};

/// Index of the largest of `logits` (the first one on ties): greedy decoding.
std::int32_t argmax(std::span<const float> logits);

}  // namespace glm4::model
