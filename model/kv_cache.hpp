// The paged KV cache pool of one device: per layer a key and a value tensor
// (num_blocks, block_size, Hkv, D) of F32, F16 or BF16, addressed by slot = block * block_size + offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/backend.hpp"
#include "model/model_config.hpp"

namespace glm4::model {

/// The type a rank's KV cache takes when [model] kv_cache_dtype is auto: F32 on a CPU (its
/// activations are F32, and widening costs more than the bandwidth saved), the weights' storage
/// type on a GPU (BF16, or F16 where BF16 weights are stored as F16), as vLLM's "auto" does.
kernels::dtype default_kv_cache_dtype(kernels::device_kind device, kernels::dtype stored_weights);

class kv_cache {
 public:
  /// Allocates num_blocks blocks of block_size tokens of `type` (F32, F16 or BF16) for every layer
  /// on `backend`. The memory is not cleared: attention reads only slots a step has written.
  kv_cache(kernels::backend& backend, const model_config& config, std::int64_t num_blocks, std::int32_t block_size = 16,
           kernels::dtype type = kernels::dtype::f32);

  /// Bytes one block of `type` takes over all layers (keys and values).
  static std::size_t bytes_per_block(const model_config& config, std::int32_t block_size, kernels::dtype type);

  std::int64_t num_blocks() const { return num_blocks_; }
  std::int32_t block_size() const { return block_size_; }
  std::int64_t num_slots() const { return num_blocks_ * block_size_; }
  std::int64_t num_layers() const { return static_cast<std::int64_t>(keys_.size()); }
  kernels::dtype type() const { return type_; }
  /// Distinct for every cache this process builds (copies share it): a new cache may land at a
  /// freed one's addresses, so addresses cannot tell a recording that its cache was replaced.
  std::uint64_t identity() const { return identity_; }

  kernels::tensor& keys(std::int64_t layer) { return keys_.at(static_cast<std::size_t>(layer)); }
  kernels::tensor& values(std::int64_t layer) { return values_.at(static_cast<std::size_t>(layer)); }

 private:
  std::int64_t num_blocks_;
  std::int32_t block_size_;
  kernels::dtype type_;
  std::uint64_t identity_;
  std::vector<kernels::tensor> keys_, values_;
};

}  // namespace glm4::model
