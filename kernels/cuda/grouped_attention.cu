#include "kernels/cuda/grouped_attention.cuh"

#include <algorithm>

#include "kernels/cuda/attention_rows.cuh"
#include "kernels/cuda/cuda_check.hpp"

namespace glm4::kernels::cuda {
namespace {

constexpr int warp_size = 32;
constexpr unsigned full_mask = 0xffffffffu;
constexpr int max_warps = 8;
constexpr int max_heads_per_warp = max_grouped_attention_group / max_warps;

__device__ float warp_max(float x) {
#pragma unroll
  for (int offset = warp_size / 2; offset > 0; offset /= 2) x = fmaxf(x, __shfl_xor_sync(full_mask, x, offset));
  return x;
}

__device__ float warp_sum(float x) {
#pragma unroll
  for (int offset = warp_size / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(full_mask, x, offset);
  return x;
}

int warps_for(std::int64_t group) { return static_cast<int>(std::min<std::int64_t>(max_warps, group)); }

// Shared memory, in order: the tile's slots (Tile), keys (Tile rows of head_dim + 1 floats: the
// padding puts lane k's row in its own bank), values (Tile x head_dim), one query row per warp.
std::size_t shared_bytes(int tile, std::int64_t head_dim, int warps) {
  return static_cast<std::size_t>(tile) * sizeof(long long) +
         static_cast<std::size_t>(tile * (head_dim + 1) + tile * head_dim + warps * head_dim) * sizeof(float);
}

// One block per (row t, KV head g), for the `group` query heads that read g: each key and value is
// loaded from the cache once per block instead of once per query head. The context goes by in
// tiles of Tile keys staged in shared memory. Warp w takes the query heads w, w + warps, ... of
// the group, each with its own online softmax: lane k scores key k of the tile against the whole
// query row, then every lane adds the weighted values into the dims it owns (lane, lane + 32, ...).
template <int DimsPerLane, int Tile>
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

  const std::int64_t t = blockIdx.x / a.num_kv_heads, g = blockIdx.x % a.num_kv_heads;
  const std::int64_t s = sequence_of_row(a.query_start, a.num_seqs, t);
  const std::int64_t context = context_of_row(a, s, t);
  const std::int64_t slot_stride = a.num_kv_heads * head_dim, kv_offset = g * head_dim;

  float m[max_heads_per_warp], l[max_heads_per_warp], acc[max_heads_per_warp][DimsPerLane];
#pragma unroll
  for (int i = 0; i < max_heads_per_warp; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < DimsPerLane; ++c) acc[i][c] = 0.0f;
  }

  for (std::int64_t start = 0; start < context; start += Tile) {
    const int n = static_cast<int>(min(static_cast<std::int64_t>(Tile), context - start));
    __syncthreads();  // every warp is done with the previous tile
    for (int k = static_cast<int>(threadIdx.x); k < n; k += static_cast<int>(blockDim.x))
      slots[k] = slot_of_key(a, s, start + k);
    __syncthreads();
    for (int i = static_cast<int>(threadIdx.x); i < n * head_dim; i += static_cast<int>(blockDim.x)) {
      const int k = i / head_dim, d = i % head_dim;
      const long long slot = slots[k];
      const std::int64_t at = slot * slot_stride + kv_offset + d;
      keys[k * (head_dim + 1) + d] = slot >= 0 ? a.k_cache[at] : 0.0f;
      values[k * head_dim + d] = slot >= 0 ? a.v_cache[at] : 0.0f;
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

  // A row with no key in the cache gets zeros, as from the other kernel.
#pragma unroll
  for (int i = 0; i < max_heads_per_warp; ++i) {
    const int local_head = warp + i * warps;
    if (i >= heads_per_warp || local_head >= group) break;
    float* dst = a.out + (t * a.num_heads + g * group + local_head) * head_dim;
    const float inv_sum = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
#pragma unroll
    for (int c = 0; c < DimsPerLane; ++c) {
      const int d = lane + c * warp_size;
      if (d < head_dim) dst[d] = acc[i][c] * inv_sum;
    }
  }
}

template <int DimsPerLane, int Tile>
void launch(const paged_attention_args& args, cudaStream_t stream) {
  const int warps = warps_for(args.num_heads / args.num_kv_heads);
  const std::size_t bytes = shared_bytes(Tile, args.head_dim, warps);
  grouped_attention_kernel<DimsPerLane, Tile>
      <<<static_cast<unsigned>(args.num_tokens * args.num_kv_heads), warps * warp_size, bytes, stream>>>(args);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

bool grouped_attention_supports(const paged_attention_args& args) {
  return args.num_kv_heads > 0 && args.num_heads % args.num_kv_heads == 0 &&
         args.num_heads / args.num_kv_heads <= max_grouped_attention_group && args.head_dim > 0 &&
         args.head_dim <= max_attention_head_dim;
}

void launch_grouped_attention(const paged_attention_args& args, cudaStream_t stream) {
  // Tiles of 32 keys (one per lane) up to head_dim 128; 16 beyond, to stay within 48 KiB.
  if (args.head_dim <= 128) launch<4, 32>(args, stream);
  else launch<8, 16>(args, stream);
}

}  // namespace glm4::kernels::cuda
