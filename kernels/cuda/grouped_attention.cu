#include "kernels/cuda/grouped_attention.cuh"

#include <algorithm>
#include <stdexcept>

#include "kernels/cuda/attention_rows.cuh"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/kv_element.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace glm4::kernels::cuda {
namespace {

constexpr int max_warps = 8;
constexpr int max_heads_per_warp = max_grouped_attention_group / max_warps;

int warps_for(std::int64_t group) { return static_cast<int>(std::min<std::int64_t>(max_warps, group)); }

// Shared memory, in order: the tile's slots (Tile), keys (Tile rows of head_dim + 1 floats: the
// padding puts lane k's row in its own bank), values (Tile x head_dim), one query row per warp.
std::size_t shared_bytes(int tile, std::int64_t head_dim, int warps) {
  return static_cast<std::size_t>(tile) * sizeof(long long) +
         static_cast<std::size_t>(tile * (head_dim + 1) + tile * head_dim + warps * head_dim) * sizeof(float);
}

// A piece's softmax state for one (row, query head), when a context is split: m, l, then the
// unnormalised accumulator (head_dim floats).
__device__ float* partial_record(const paged_attention_args& a, std::int64_t t, std::int64_t h, std::int64_t split) {
  return a.partials + ((t * a.num_heads + h) * a.splits + split) * (a.head_dim + 2);
}

// One block per (row t, KV head g, piece of the context), for the `group` query heads that read
// g: each key and value is loaded from the cache once per block instead of once per query head.
// The piece goes by in tiles of Tile keys staged in shared memory. Warp w takes the query heads w,
// w + warps, ... of the group, each with its own online softmax: lane k scores key k of the tile
// against the whole query row, then every lane adds the weighted values into the dims it owns
// (lane, lane + 32, ...). Unsplit, the block writes the output; split, its piece's state, which
// merge_pieces_kernel combines.
template <class KV, int DimsPerLane, int Tile>
__global__ void __launch_bounds__(max_warps * warp_size) grouped_attention_kernel(paged_attention_args a) {
  extern __shared__ long long shared_words[];
  const int head_dim = static_cast<int>(a.head_dim);
  const int warps = static_cast<int>(blockDim.x) / warp_size;
  const int group = static_cast<int>(a.num_heads / a.num_kv_heads);
  const int heads_per_warp = (group + warps - 1) / warps;
  long long* slots = shared_words;                                // Tile
  float* keys = reinterpret_cast<float*>(slots + Tile);           // Tile x (head_dim + 1)
  float* values = keys + Tile * (head_dim + 1);                   // Tile x head_dim
  const int lane = static_cast<int>(threadIdx.x) % warp_size, warp = static_cast<int>(threadIdx.x) / warp_size;
  float* query = values + Tile * head_dim + warp * head_dim;      // this warp's query row

  const std::int64_t item = blockIdx.x / a.splits, split = blockIdx.x % a.splits;
  const std::int64_t t = item / a.num_kv_heads, g = item % a.num_kv_heads;
  const std::int64_t s = sequence_of_row(a.query_start, a.num_seqs, t);
  const std::int64_t context = context_of_row(a, s, t);
  const std::int64_t first_key = a.splits > 1 ? split * a.keys_per_split : 0;
  const std::int64_t end_key = a.splits > 1 ? min(context, first_key + a.keys_per_split) : context;
  const std::int64_t slot_stride = a.num_kv_heads * head_dim, kv_offset = g * head_dim;
  const KV* k_cache = static_cast<const KV*>(a.k_cache);
  const KV* v_cache = static_cast<const KV*>(a.v_cache);

  float m[max_heads_per_warp], l[max_heads_per_warp], acc[max_heads_per_warp][DimsPerLane];
#pragma unroll
  for (int i = 0; i < max_heads_per_warp; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < DimsPerLane; ++c) acc[i][c] = 0.0f;
  }

  for (std::int64_t start = first_key; start < end_key; start += Tile) {
    const int n = static_cast<int>(min(static_cast<std::int64_t>(Tile), end_key - start));
    __syncthreads();  // every warp is done with the previous tile
    for (int k = static_cast<int>(threadIdx.x); k < n; k += static_cast<int>(blockDim.x))
      slots[k] = slot_of_key(a, s, start + k);
    __syncthreads();
    // Four loads in flight per thread before their stores, so a tile costs about one trip to memory.
    const int count = n * head_dim, stride = static_cast<int>(blockDim.x);
    for (int base = static_cast<int>(threadIdx.x); base < count; base += 4 * stride) {
      float key_part[4], value_part[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int i = base + u * stride;
        const long long slot = i < count ? slots[i / head_dim] : -1;
        const std::int64_t at = slot * slot_stride + kv_offset + i % head_dim;
        key_part[u] = slot >= 0 ? widen(k_cache[at]) : 0.0f;
        value_part[u] = slot >= 0 ? widen(v_cache[at]) : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int i = base + u * stride;
        if (i >= count) break;
        const int k = i / head_dim, d = i % head_dim;
        keys[k * (head_dim + 1) + d] = key_part[u];
        values[k * head_dim + d] = value_part[u];
      }
    }
    __syncthreads();

#pragma unroll
    for (int i = 0; i < max_heads_per_warp; ++i) {
      const int local_head = warp + i * warps;
      if (i >= heads_per_warp || local_head >= group) break;  // uniform across the warp
      const float* q_row = a.q + (t * a.num_heads + g * group + local_head) * head_dim;
      for (int d = lane; d < head_dim; d += warp_size) query[d] = q_row[d];
      __syncwarp();
      float score = -INFINITY;
      if (lane < n && slots[lane] >= 0) {
        const float* key = keys + lane * (head_dim + 1);
        float dot = 0.0f;
        for (int d = 0; d < head_dim; ++d) dot += query[d] * key[d];
        score = a.scale * dot;
      }
      const float tile_max = warp_max(score);
      if (tile_max != -INFINITY) {  // uniform: some key of the tile is in the cache
        const float new_m = fmaxf(m[i], tile_max);
        const float correction = expf(m[i] - new_m);  // 0 while m is -inf
        const float p = expf(score - new_m);          // 0 for keys outside the cache or the tile
        l[i] = l[i] * correction + warp_sum(p);
#pragma unroll
        for (int c = 0; c < DimsPerLane; ++c) acc[i][c] *= correction;
        for (int k = 0; k < n; ++k) {
          const float weight = __shfl_sync(full_mask, p, k);
#pragma unroll
          for (int c = 0; c < DimsPerLane; ++c) {
            const int d = lane + c * warp_size;
            if (d < head_dim) acc[i][c] += weight * values[k * head_dim + d];
          }
        }
        m[i] = new_m;
      }
      __syncwarp();  // the query row is rewritten for the next head
    }
  }

  // A row (or piece) with no key in the cache gets zeros (l = 0), as from the other kernel.
#pragma unroll
  for (int i = 0; i < max_heads_per_warp; ++i) {
    const int local_head = warp + i * warps;
    if (i >= heads_per_warp || local_head >= group) break;
    const std::int64_t h = g * group + local_head;
    if (a.splits > 1) {
      float* record = partial_record(a, t, h, split);
      if (lane == 0) {
        record[0] = m[i];
        record[1] = l[i];
      }
#pragma unroll
      for (int c = 0; c < DimsPerLane; ++c) {
        const int d = lane + c * warp_size;
        if (d < head_dim) record[2 + d] = acc[i][c];
      }
      continue;
    }
    float* dst = a.out + (t * a.num_heads + h) * head_dim;
    const float inv_sum = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
#pragma unroll
    for (int c = 0; c < DimsPerLane; ++c) {
      const int d = lane + c * warp_size;
      if (d < head_dim) dst[d] = acc[i][c] * inv_sum;
    }
  }
}

// One block per (row, query head): the pieces' states rescaled to their common maximum, summed,
// and normalised. Pieces that saw no key (l = 0) weigh nothing.
__global__ void merge_pieces_kernel(paged_attention_args a) {
  const std::int64_t item = blockIdx.x, t = item / a.num_heads, h = item % a.num_heads;
  float best = -INFINITY;
  for (std::int64_t p = 0; p < a.splits; ++p) {
    const float* record = partial_record(a, t, h, p);
    if (record[1] > 0.0f) best = fmaxf(best, record[0]);
  }
  float total = 0.0f;
  for (std::int64_t p = 0; p < a.splits; ++p) {
    const float* record = partial_record(a, t, h, p);
    if (record[1] > 0.0f) total += record[1] * expf(record[0] - best);
  }
  const float inv_total = total > 0.0f ? 1.0f / total : 0.0f;
  float* dst = a.out + item * a.head_dim;
  for (std::int64_t d = threadIdx.x; d < a.head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (std::int64_t p = 0; p < a.splits; ++p) {
      const float* record = partial_record(a, t, h, p);
      if (record[1] > 0.0f) sum += record[2 + d] * expf(record[0] - best);
    }
    dst[d] = sum * inv_total;
  }
}

template <class KV, int DimsPerLane, int Tile>
void launch(const paged_attention_args& args, cudaStream_t stream) {
  const int warps = warps_for(args.num_heads / args.num_kv_heads);
  const std::size_t bytes = shared_bytes(Tile, args.head_dim, warps);
  grouped_attention_kernel<KV, DimsPerLane, Tile>
      <<<static_cast<unsigned>(args.num_tokens * args.num_kv_heads * args.splits), warps * warp_size, bytes, stream>>>(args);
  CUDA_CHECK(cudaGetLastError());
  if (args.splits > 1) {
    merge_pieces_kernel<<<static_cast<unsigned>(args.num_tokens * args.num_heads), 128, 0, stream>>>(args);
    CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

bool grouped_attention_supports(const paged_attention_args& args) {
  return args.num_kv_heads > 0 && args.num_heads % args.num_kv_heads == 0 &&
         args.num_heads / args.num_kv_heads <= max_grouped_attention_group && args.head_dim > 0 &&
         args.head_dim <= max_attention_head_dim;
}

std::int64_t grouped_attention_tile(std::int64_t head_dim) { return head_dim <= 128 ? 32 : 16; }

std::size_t grouped_attention_partials_bytes(const paged_attention_args& args) {
  if (args.splits <= 1) return 0;
  return static_cast<std::size_t>(args.num_tokens * args.num_heads * args.splits * (args.head_dim + 2)) * sizeof(float);
}

void launch_grouped_attention(const paged_attention_args& args, cudaStream_t stream) {
  if (args.splits < 1 || (args.splits > 1 && (args.partials == nullptr || args.keys_per_split <= 0 ||
                                              args.keys_per_split % grouped_attention_tile(args.head_dim) != 0)))
    throw std::invalid_argument("launch_grouped_attention: a split needs whole tiles per piece and room for the pieces");
  // Tiles of 32 keys (one per lane) up to head_dim 128; 16 beyond, to stay within 48 KiB. The tile
  // is staged in F32 whatever the cache holds.
  visit_kv_type(args.cache_type, "launch_grouped_attention", [&](auto tag) {
    using KV = typename decltype(tag)::type;
    if (args.head_dim <= 128) launch<KV, 4, 32>(args, stream);
    else launch<KV, 8, 16>(args, stream);
  });
}

}  // namespace glm4::kernels::cuda
