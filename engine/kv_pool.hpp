// Sizing the KV pool every rank shares: the scheduler hands out one set of block ids, and each
// device holds its own layers and KV heads of every block, so the device that fits the fewest
// blocks decides the pool.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "engine/scheduler_config.hpp"

namespace glm4::engine {

/// What one device can give the KV pool, as it reports it once its weights are loaded.
struct memory_report {
  std::string device;                  // names it in errors and logs
  std::uint64_t kv_budget_bytes = 0;   // configured, or measured free memory after the weights
  std::uint64_t kv_bytes_per_block = 0;  // its share of one block; 0 when it keeps no KV
  bool operator==(const memory_report&) const = default;

  /// Blocks its budget holds (unlimited when it keeps no KV).
  std::int64_t max_blocks() const;
};

struct kv_pool_size {
  std::int32_t num_blocks = 0;
  std::int64_t max_model_len = 0;   // the config's, or lowered to what the pool holds
  std::uint64_t largest_block_bytes = 0;  // of the device whose share of a block is largest
  std::string note;                 // why max_model_len was lowered; empty when it was not
  bool operator==(const kv_pool_size&) const = default;
};

/// The pool for `config` over `devices`: the fewest blocks any device holds, and no more than
/// config.num_blocks (what max_num_seqs full-length sequences use). When the pool holds fewer
/// than max_model_len tokens, max_model_len is lowered if config.fit_max_model_len_to_pool,
/// otherwise std::runtime_error names the settings to change; it is thrown too when the pool
/// holds not even one block.
kv_pool_size size_kv_pool(const scheduler_config& config, std::span<const memory_report> devices);

}  // namespace glm4::engine
