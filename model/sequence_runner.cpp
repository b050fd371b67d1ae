#include "model/sequence_runner.hpp"

#include <stdexcept>
#include <string>

namespace glm4::model {

namespace {

std::int64_t blocks_for(std::int64_t max_tokens, std::int32_t block_size) {
  if (max_tokens <= 0) throw std::invalid_argument("sequence_runner: max_tokens must be positive");
  if (block_size <= 0) throw std::invalid_argument("sequence_runner: block_size must be positive");
  return (max_tokens + block_size - 1) / block_size;
}

}  // namespace

sequence_runner::sequence_runner(glm4_model& model, std::int64_t max_tokens, std::int32_t block_size)
    : model_(model),
      cache_(model.backend(), model.config(), blocks_for(max_tokens, block_size), block_size, model.kv_cache_dtype()) {
  // Blocks in reverse order, so the sequence's pages are not laid out like its positions: the
  // paging is exercised even on this simple path.
  for (std::int64_t b = cache_.num_blocks() - 1; b >= 0; --b) blocks_.push_back(static_cast<std::int32_t>(b));
}

std::vector<float> sequence_runner::prefill(std::span<const std::int32_t> ids, logit_rows wanted) {
  if (num_tokens_ + static_cast<std::int64_t>(ids.size()) > max_tokens())
    throw std::length_error("sequence_runner: " + std::to_string(num_tokens_ + static_cast<std::int64_t>(ids.size())) +
                            " tokens exceed the cache of " + std::to_string(max_tokens()));
  step_batch batch;
  batch.block_size = cache_.block_size();
  const std::int64_t context = num_tokens_ + static_cast<std::int64_t>(ids.size());
  const std::int64_t num_blocks = (context + batch.block_size - 1) / batch.block_size;
  add_sequence(batch, ids, static_cast<std::int32_t>(num_tokens_),
               std::span<const std::int32_t>(blocks_).first(static_cast<std::size_t>(num_blocks)), wanted);
  std::vector<float> logits = model_.forward_logits(batch, cache_);
  num_tokens_ = context;
  return logits;
}

std::vector<float> sequence_runner::decode(std::int32_t id) {
  const std::int32_t ids[1] = {id};
  return prefill(ids, logit_rows::last);
}

std::int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("argmax of no logits");
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<std::int32_t>(best);
}

}  // namespace glm4::model
