// Which keys a query row of a paged attention step sees, shared by the attention kernels.
#pragma once

#include <cstdint>

#include "kernels/cuda/paged_attention.cuh"

namespace glm4::kernels::cuda {

/// The sequence owning row t: the last s with query_start[s] <= t (empty sequences are skipped).
__device__ inline std::int64_t sequence_of_row(const std::int32_t* query_start, std::int64_t num_seqs, std::int64_t t) {
  std::int64_t lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const std::int64_t mid = (lo + hi + 1) / 2;
    if (query_start[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/// How many cached keys row t of sequence s attends to: up to its own position, never past the
/// sequence's context nor its row of the block table (the CPU backend throws there).
__device__ inline std::int64_t context_of_row(const paged_attention_args& a, std::int64_t s, std::int64_t t) {
  return min(min(static_cast<std::int64_t>(a.positions[t]) + 1, static_cast<std::int64_t>(a.context_len[s])),
             a.max_blocks_per_seq * a.block_size);
}

/// The cache slot of key j of sequence s, or -1 when its block table entry is outside the cache.
__device__ inline std::int64_t slot_of_key(const paged_attention_args& a, std::int64_t s, std::int64_t j) {
  const std::int64_t block = a.block_table[s * a.max_blocks_per_seq + j / a.block_size];
  if (block < 0 || block >= a.num_blocks) return -1;
  return block * a.block_size + j % a.block_size;
}

}  // namespace glm4::kernels::cuda
