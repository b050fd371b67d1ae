// Paged attention with the query heads of a KV head together (GQA): one block per (row, KV head)
// loads each cached key and value once for the whole group, where the per-head kernel
// (paged_attention.cu) loads it once per query head: 16 times for GLM-4-9B's 32 / 2 heads.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/paged_attention.cuh"

namespace glm4::kernels::cuda {

/// The most query heads per KV head the grouped kernel takes.
inline constexpr std::int64_t max_grouped_attention_group = 64;

/// Whether launch_grouped_attention takes these shapes (the per-head kernel takes the rest).
bool grouped_attention_supports(const paged_attention_args& args);

/// Keys per tile for a head_dim: a context split (args.keys_per_split) is a multiple of it.
std::int64_t grouped_attention_tile(std::int64_t head_dim);

/// The bytes args.partials must point to for args.splits (0 unsplit).
std::size_t grouped_attention_partials_bytes(const paged_attention_args& args);

/// The same results as the per-head kernel (FP32 scores, online softmax); args already checked
/// by launch_paged_attention, with at least one row. With args.splits > 1 each row's context is
/// cut into pieces of keys_per_split keys, one block each, then merged (a second kernel).
void launch_grouped_attention(const paged_attention_args& args, cudaStream_t stream);

}  // namespace glm4::kernels::cuda
