// The smallest device decides the pool; max_model_len follows it or the start fails.
#include "engine/kv_pool.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace glm4::engine {

std::int64_t memory_report::max_blocks() const {
  if (kv_bytes_per_block == 0) return std::numeric_limits<std::int64_t>::max();
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(kv_budget_bytes / kv_bytes_per_block, std::numeric_limits<std::int32_t>::max()));
}

kv_pool_size size_kv_pool(const scheduler_config& config, std::span<const memory_report> devices) {
  std::int64_t num_blocks = config.num_blocks;
  const memory_report* smallest = nullptr;
  kv_pool_size pool;
  for (const memory_report& device : devices) {
    pool.largest_block_bytes = std::max(pool.largest_block_bytes, device.kv_bytes_per_block);
    if (device.max_blocks() >= num_blocks) continue;
    num_blocks = device.max_blocks();
    smallest = &device;
  }
  const std::int64_t pool_tokens = num_blocks * config.block_size;
  pool.num_blocks = static_cast<std::int32_t>(num_blocks);
  pool.max_model_len = config.max_model_len;
  if (pool_tokens >= config.max_model_len) return pool;
  const std::string holder = smallest ? " (" + smallest->device + " holds " + std::to_string(num_blocks) + " blocks of " +
                                            std::to_string(smallest->kv_bytes_per_block) + " bytes in its " +
                                            std::to_string(smallest->kv_budget_bytes) + "-byte budget)"
                                      : "";
  if (num_blocks < 1)
    throw std::runtime_error("the KV cache budget holds no block of " + std::to_string(config.block_size) + " tokens" +
                             holder + "; raise kv_cache_bytes or gpu_memory_utilization");
  if (!config.fit_max_model_len_to_pool)
    throw std::runtime_error("max_model_len " + std::to_string(config.max_model_len) + " does not fit the KV cache (" +
                             std::to_string(pool_tokens) + " tokens of " + std::to_string(num_blocks) + " blocks" + holder +
                             "); raise kv_cache_bytes or lower [scheduler] max_model_len");
  pool.note = "max_model_len lowered from " + std::to_string(config.max_model_len) + " to the " +
              std::to_string(pool_tokens) + " tokens the KV cache holds" + holder;
  pool.max_model_len = pool_tokens;
  return pool;
}

}  // namespace glm4::engine
