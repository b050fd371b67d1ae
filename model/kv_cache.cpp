#include "model/kv_cache.hpp"

#include <atomic>
#include <stdexcept>
#include <string>

namespace glm4::model {
namespace {
std::atomic<std::uint64_t> caches_built{0};
}  // namespace

kernels::dtype default_kv_cache_dtype(kernels::device_kind device, kernels::dtype stored_weights) {
  if (device == kernels::device_kind::cpu || stored_weights == kernels::dtype::i32) return kernels::dtype::f32;
  return stored_weights;
}

kv_cache::kv_cache(kernels::backend& backend, const model_config& config, std::int64_t num_blocks, std::int32_t block_size,
                   kernels::dtype type)
    : num_blocks_(num_blocks), block_size_(block_size), type_(type), identity_(++caches_built) {
  if (num_blocks <= 0 || block_size <= 0)
    throw std::invalid_argument("kv_cache: needs at least one block of at least one token, got " + std::to_string(num_blocks) +
                                " x " + std::to_string(block_size));
  if (type == kernels::dtype::i32) throw std::invalid_argument("kv_cache: holds F32, F16 or BF16, not I32");
  const std::vector<std::int64_t> shape{num_blocks, block_size, config.num_kv_heads, config.head_dim};
  for (std::int64_t layer = 0; layer < config.num_layers; ++layer) {
    keys_.push_back(backend.alloc(type, shape));
    values_.push_back(backend.alloc(type, shape));
  }
}

std::size_t kv_cache::bytes_per_block(const model_config& config, std::int32_t block_size, kernels::dtype type) {
  return static_cast<std::size_t>(2 * config.num_layers * block_size * config.num_kv_heads * config.head_dim) *
         kernels::dtype_size(type);
}

}  // namespace glm4::model
