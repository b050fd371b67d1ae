#include "kernels/cuda/sample_rows.cuh"

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <climits>
#include <stdexcept>

#include "kernels/cuda/block_reduce_ops.cuh"
#include "kernels/cuda/cuda_check.hpp"

namespace glm4::kernels::cuda {
namespace {

using namespace sampling_math;

// 512 threads leave each up to 128 registers for the double-precision sums.
constexpr int sample_threads = 512;

struct arg_best {
  float value;
  std::int32_t id;
};

struct better_of {
  __device__ arg_best operator()(const arg_best& a, const arg_best& b) const {
    if (a.value != b.value) return a.value > b.value ? a : b;
    return a.id <= b.id ? a : b;
  }
};
struct min_of_ints {
  __device__ std::int32_t operator()(std::int32_t a, std::int32_t b) const { return a < b ? a : b; }
};
struct max_of_ints {
  __device__ std::int32_t operator()(std::int32_t a, std::int32_t b) const { return a > b ? a : b; }
};

struct block_shared {
  union {
    cub::BlockReduce<float, sample_threads>::TempStorage floats;
    cub::BlockReduce<double, sample_threads>::TempStorage doubles;
    cub::BlockReduce<arg_best, sample_threads>::TempStorage bests;
    cub::BlockReduce<std::int32_t, sample_threads>::TempStorage ints;
    cub::BlockScan<double, sample_threads>::TempStorage double_scan;
    cub::BlockScan<std::uint32_t, sample_threads>::TempStorage count_scan;
  } cub;
  std::uint32_t counts[radix_bins];
  double masses[radix_bins];
  // What thread 0 decides, for the whole block.
  arg_best best;
  float value;
  double mass;
  std::int32_t number;
  std::uint32_t count;
};

// Every helper below is called by all threads of the block and returns the same value to each
// (broadcast_from_first's trailing __syncthreads lets the shared fields be written again).

__device__ float block_max(block_shared& s, float mine) {
  return broadcast_from_first(&s.value, cub::BlockReduce<float, sample_threads>(s.cub.floats).Reduce(mine, max_of_floats{}));
}
__device__ double block_sum(block_shared& s, double mine) {
  return broadcast_from_first(&s.mass, cub::BlockReduce<double, sample_threads>(s.cub.doubles).Sum(mine));
}
__device__ std::int32_t block_min(block_shared& s, std::int32_t mine) {
  return broadcast_from_first(&s.number, cub::BlockReduce<std::int32_t, sample_threads>(s.cub.ints).Reduce(mine, min_of_ints{}));
}
__device__ std::int32_t block_max(block_shared& s, std::int32_t mine) {
  return broadcast_from_first(&s.number, cub::BlockReduce<std::int32_t, sample_threads>(s.cub.ints).Reduce(mine, max_of_ints{}));
}

// The range of ids a thread walks where order matters (tie ordinals, the draw).
struct chunk {
  std::int64_t begin, end;
};
__device__ chunk chunk_of_thread(std::int64_t vocab) {
  const std::int64_t size = (vocab + blockDim.x - 1) / blockDim.x;
  const std::int64_t begin = min(vocab, static_cast<std::int64_t>(threadIdx.x) * size);
  return {begin, min(vocab, begin + size)};
}

// Lowest id among the largest values of v (sanitized first when `sanitize`).
__device__ arg_best block_argmax(block_shared& s, const float* v, std::int64_t vocab, bool sanitize) {
  arg_best mine{negative_infinity(), INT_MAX};
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float value = sanitize ? sanitized(v[i]) : v[i];
    if (value > mine.value || (value == mine.value && i < mine.id)) mine = {value, static_cast<std::int32_t>(i)};
  }
  return broadcast_from_first(&s.best, cub::BlockReduce<arg_best, sample_threads>(s.cub.bests).Reduce(mine, better_of{}));
}

__device__ float row_max(block_shared& s, const float* x, std::int64_t vocab) {
  float mine = negative_infinity();
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) mine = x[i] > mine ? x[i] : mine;
  return block_max(s, mine);
}

__device__ void clear_histogram(block_shared& s) {
  for (int bin = threadIdx.x; bin < radix_bins; bin += blockDim.x) {
    s.counts[bin] = 0;
    s.masses[bin] = 0.0;
  }
  __syncthreads();
}

// Drops every value below the k-th largest (counting repeats).
__device__ void keep_top_k(block_shared& s, float* x, std::int64_t vocab, std::uint32_t k) {
  std::uint32_t prefix = 0, prefix_mask = 0, rank = k;
  for (int shift = 32 - radix_bits; shift >= 0; shift -= radix_bits) {
    clear_histogram(s);
    for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const std::uint32_t key = ordered_key(x[i]);
      if ((key & prefix_mask) == prefix) atomicAdd(&s.counts[radix_bin(key, shift)], 1u);
    }
    __syncthreads();
    picked_bin pick{};
    if (threadIdx.x == 0) pick = pick_bin_by_count(s.counts, rank);
    const int bin = broadcast_from_first(&s.number, pick.bin);
    rank -= broadcast_from_first(&s.count, static_cast<std::uint32_t>(pick.before));
    prefix |= static_cast<std::uint32_t>(bin) << shift;
    prefix_mask |= static_cast<std::uint32_t>(radix_bins - 1) << shift;
  }
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x)
    if (ordered_key(x[i]) < prefix) x[i] = negative_infinity();
  __syncthreads();
}

// Keeps the shortest prefix in rank order (value descending, id ascending) whose mass reaches
// top_p of the total, as kernels/cpu/sample_rows.cpp does.
__device__ void keep_top_p(block_shared& s, float* x, std::int64_t vocab, double top_p) {
  const float best = row_max(s, x, vocab);
  if (best == negative_infinity()) return;
  double mine = 0.0;
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x)
    if (x[i] != negative_infinity()) mine += weight_of(x[i], best);
  const double target = top_p * block_sum(s, mine);
  if (!(target > 0.0)) {
    for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) x[i] = negative_infinity();
    __syncthreads();
    return;
  }
  std::uint32_t prefix = 0, prefix_mask = 0, num_ties = 0;
  double mass_above = 0.0;
  for (int shift = 32 - radix_bits; shift >= 0; shift -= radix_bits) {
    clear_histogram(s);
    for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float v = x[i];
      const std::uint32_t key = ordered_key(v);
      if (v == negative_infinity() || (key & prefix_mask) != prefix) continue;
      const int bin = radix_bin(key, shift);
      atomicAdd(&s.counts[bin], 1u);
      atomicAdd(&s.masses[bin], weight_of(v, best));
    }
    __syncthreads();
    picked_bin pick{};
    std::uint32_t count = 0;
    if (threadIdx.x == 0) {
      pick = pick_bin_by_mass(s.counts, s.masses, mass_above, target);
      count = s.counts[pick.bin];
    }
    const int bin = broadcast_from_first(&s.number, pick.bin);
    mass_above = broadcast_from_first(&s.mass, pick.before);
    num_ties = broadcast_from_first(&s.count, count);
    prefix |= static_cast<std::uint32_t>(bin) << shift;
    prefix_mask |= static_cast<std::uint32_t>(radix_bins - 1) << shift;
  }
  // One thread counts the kept ties (up to the whole vocabulary of sequential adds), then shares.
  std::uint32_t kept = 0;
  if (threadIdx.x == 0) kept = ties_kept(mass_above, weight_of(value_of_key(prefix), best), num_ties, target);
  const std::uint32_t num_kept_ties = broadcast_from_first(&s.count, kept);
  // Tie ordinals follow id order: each thread counts the ties in its chunk, then a scan.
  const chunk mine_ids = chunk_of_thread(vocab);
  std::uint32_t local_ties = 0;
  for (std::int64_t i = mine_ids.begin; i < mine_ids.end; ++i)
    local_ties += x[i] != negative_infinity() && ordered_key(x[i]) == prefix ? 1u : 0u;
  std::uint32_t ordinal = 0;
  cub::BlockScan<std::uint32_t, sample_threads>(s.cub.count_scan).ExclusiveSum(local_ties, ordinal);
  __syncthreads();
  for (std::int64_t i = mine_ids.begin; i < mine_ids.end; ++i) {
    if (x[i] == negative_infinity()) continue;
    const std::uint32_t key = ordered_key(x[i]);
    if (key < prefix || (key == prefix && ordinal++ >= num_kept_ties)) x[i] = negative_infinity();
  }
  __syncthreads();
}

__device__ void keep_min_p(block_shared& s, float* x, std::int64_t vocab, double min_p) {
  const float best = row_max(s, x, vocab);
  if (best == negative_infinity()) return;
  const double threshold = static_cast<double>(best) + log(min_p);
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x)
    if (static_cast<double>(x[i]) < threshold) x[i] = negative_infinity();
  __syncthreads();
}

// The first id at which the running mass in id order passes uniform * total: each thread sums its
// chunk, a scan gives the mass before it, and the lowest crossing wins.
__device__ std::int32_t draw(block_shared& s, const float* x, std::int64_t vocab, float best, double uniform) {
  const chunk mine_ids = chunk_of_thread(vocab);
  double local_mass = 0.0;
  for (std::int64_t i = mine_ids.begin; i < mine_ids.end; ++i) local_mass += weight_of(x[i], best);
  double cumulative = 0.0, total = 0.0;
  cub::BlockScan<double, sample_threads>(s.cub.double_scan).ExclusiveSum(local_mass, cumulative, total);
  __syncthreads();
  const double target = uniform * total;
  std::int32_t first_crossing = INT_MAX, last_positive = -1;
  for (std::int64_t i = mine_ids.begin; i < mine_ids.end; ++i) {
    const double weight = weight_of(x[i], best);
    if (weight <= 0.0) continue;
    cumulative += weight;
    last_positive = static_cast<std::int32_t>(i);
    if (cumulative > target) {
      first_crossing = last_positive;
      break;
    }
  }
  const std::int32_t chosen = block_min(s, first_crossing);
  return chosen != INT_MAX ? chosen : block_max(s, last_positive);  // rounding left target above the mass
}

__global__ void __launch_bounds__(sample_threads)
    sample_rows_kernel(std::int32_t* ids, const float* logits, float* work, std::int64_t vocab,
                       const row_sampling_spec* specs, const token_edit* edits) {
  __shared__ block_shared s;
  const std::int64_t row = blockIdx.x;
  const row_sampling_spec spec = specs[row];
  const float* in = logits + row * vocab;
  float* x = work + row * vocab;
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) x[i] = sanitized(in[i]);
  __syncthreads();
  // Ids are distinct within a row, so no two threads write one token.
  for (std::int32_t e = threadIdx.x; e < spec.num_edits; e += blockDim.x) {
    const token_edit edit = edits[spec.first_edit + e];
    if (edit.id >= 0 && edit.id < vocab) x[edit.id] = apply_edit(x[edit.id], edit, spec);
  }
  __syncthreads();
  std::int32_t chosen = 0;
  if (spec.greedy) {
    const arg_best best = block_argmax(s, x, vocab, false);
    chosen = best.value != negative_infinity() ? best.id : block_argmax(s, in, vocab, true).id;
  } else {
    for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) x[i] = apply_temperature(x[i], spec.temperature);
    __syncthreads();
    if (spec.top_k > 0 && spec.top_k < vocab) keep_top_k(s, x, vocab, static_cast<std::uint32_t>(spec.top_k));
    if (spec.top_p < 1.0) keep_top_p(s, x, vocab, spec.top_p);
    if (spec.min_p > 0.0) keep_min_p(s, x, vocab, spec.min_p);
    const float best = row_max(s, x, vocab);
    chosen = best != negative_infinity() ? draw(s, x, vocab, best, spec.uniform) : block_argmax(s, in, vocab, true).id;
  }
  if (threadIdx.x == 0) ids[row] = chosen;
}

}  // namespace

void launch_sample_rows(std::int32_t* ids, const float* logits, float* work, std::int64_t num_rows, std::int64_t vocab,
                        const row_sampling_spec* specs, const token_edit* edits, cudaStream_t stream) {
  if (num_rows < 0 || vocab <= 0 || vocab > INT_MAX) throw std::invalid_argument("launch_sample_rows: bad shape");
  if (num_rows == 0) return;
  sample_rows_kernel<<<static_cast<unsigned>(num_rows), sample_threads, 0, stream>>>(ids, logits, work, vocab, specs,
                                                                                      edits);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
