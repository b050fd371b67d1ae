#include "model/kv_cache.hpp"

#include <atomic>
#include <stdexcept>
#include <string>

namespace glm4::model {
namespace {
std::atomic<std::uint64_t> caches_built{0};
}  // namespace

kv_cache::kv_cache(kernels::backend& backend, const model_config& config, std::int64_t num_blocks, std::int32_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size), identity_(++caches_built) {
  if (num_blocks <= 0 || block_size <= 0)
    throw std::invalid_argument("kv_cache: needs at least one block of at least one token, got " + std::to_string(num_blocks) +
                                " x " + std::to_string(block_size));
  const std::vector<std::int64_t> shape{num_blocks, block_size, config.num_kv_heads, config.head_dim};
  for (std::int64_t layer = 0; layer < config.num_layers; ++layer) {
    keys_.push_back(backend.alloc(kernels::dtype::f32, shape));
    values_.push_back(backend.alloc(kernels::dtype::f32, shape));
  }
}

std::size_t kv_cache::bytes_per_block(const model_config& config, std::int32_t block_size) {
  return static_cast<std::size_t>(2 * config.num_layers * block_size * config.num_kv_heads * config.head_dim) * sizeof(float);
}

}  // namespace glm4::model
