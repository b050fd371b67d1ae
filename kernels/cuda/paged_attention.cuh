// Paged attention on the GPU for mixed prefill/decode steps: our own kernel (no FlashAttention, so
// it runs on every target from sm_75), FP32 scores, online softmax and accumulation, GQA.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/attention_kernel.hpp"
#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

/// The layout of kernels::attention_batch as raw device pointers (all I32 arrays on the device).
struct paged_attention_args {
  float* out = nullptr;            // (num_tokens, num_heads, head_dim)
  const float* q = nullptr;        // (num_tokens, num_heads, head_dim)
  const void* k_cache = nullptr;   // (num_blocks, block_size, num_kv_heads, head_dim) of cache_type
  const void* v_cache = nullptr;
  dtype cache_type = dtype::f32;   // F32, F16 or BF16, widened to F32 as it is read
  const std::int32_t* query_start = nullptr;  // (num_seqs + 1)
  const std::int32_t* context_len = nullptr;  // (num_seqs)
  const std::int32_t* block_table = nullptr;  // (num_seqs, max_blocks_per_seq)
  const std::int32_t* positions = nullptr;    // (num_tokens)
  std::int64_t num_tokens = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  std::int64_t num_seqs = 0, max_blocks_per_seq = 0, block_size = 0, num_blocks = 0;
  float scale = 1.0f;
  // The grouped kernel only: its context split (kernels/attention_split.hpp; 1 = none) and, when
  // split, room for num_tokens * num_heads * splits records of head_dim + 2 floats.
  std::int64_t splits = 1, keys_per_split = 0;
  float* partials = nullptr;
};

/// Largest head_dim the kernel handles (each lane of a warp keeps head_dim / 32 accumulators).
inline constexpr std::int64_t max_attention_head_dim = 256;

/// Row t of sequence s attends to cached positions 0..min(positions[t], context_len[s] - 1);
/// query head h reads KV head h / (num_heads / num_kv_heads). Device-side indices are not
/// trusted: a block table entry outside the cache skips its keys. Shapes and the cache type are
/// checked here and throw std::invalid_argument. `kernel` grouped falls back to per_head for shapes it does not take.
void launch_paged_attention(const paged_attention_args& args, cudaStream_t stream,
                            attention_kernel kernel = attention_kernel::grouped);

}  // namespace glm4::kernels::cuda
