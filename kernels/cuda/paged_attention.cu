#include "kernels/cuda/paged_attention.cuh"

#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_rows.cuh"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/grouped_attention.cuh"
#include "kernels/cuda/kv_element.cuh"

namespace glm4::kernels::cuda {
namespace {

constexpr int warp_size = 32;
constexpr int num_warps = 4;
constexpr int dims_per_lane = static_cast<int>(max_attention_head_dim / warp_size);

// One block per (row, query head). Each warp walks every num_warps-th key of the context with its
// own online softmax (running max m, running sum l, accumulator spread over the lanes: lane owns
// dims lane, lane + 32, ...); the warps' partial results are then merged through shared memory.
template <class KV>
__global__ void __launch_bounds__(num_warps * warp_size) paged_attention_kernel(paged_attention_args a) {
  extern __shared__ float shared[];
  const std::int64_t head_dim = a.head_dim;
  float* query = shared;                                 // head_dim
  float* warp_acc = query + head_dim;                    // num_warps * head_dim
  float* warp_max = warp_acc + num_warps * head_dim;     // num_warps
  float* warp_sum = warp_max + num_warps;                // num_warps

  const std::int64_t item = blockIdx.x;
  const std::int64_t t = item / a.num_heads, h = item % a.num_heads;
  const int lane = static_cast<int>(threadIdx.x) % warp_size, warp = static_cast<int>(threadIdx.x) / warp_size;
  float* dst = a.out + item * head_dim;

  const std::int64_t s = sequence_of_row(a.query_start, a.num_seqs, t);
  const std::int64_t context = context_of_row(a, s, t);
  if (context <= 0) {
    for (std::int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) dst[d] = 0.0f;
    return;
  }
  const float* q_row = a.q + item * head_dim;
  for (std::int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) query[d] = q_row[d];
  __syncthreads();

  const std::int64_t group = a.num_heads / a.num_kv_heads;
  const std::int64_t head_offset = (h / group) * head_dim;
  const std::int64_t slot_stride = a.num_kv_heads * head_dim;

  float m = -INFINITY, l = 0.0f;
  float acc[dims_per_lane];
#pragma unroll
  for (int c = 0; c < dims_per_lane; ++c) acc[c] = 0.0f;

  for (std::int64_t j = warp; j < context; j += num_warps) {
    const std::int64_t slot = slot_of_key(a, s, j);
    if (slot < 0) continue;  // uniform across the warp
    const KV* key = static_cast<const KV*>(a.k_cache) + slot * slot_stride + head_offset;
    const KV* value = static_cast<const KV*>(a.v_cache) + slot * slot_stride + head_offset;
    float partial = 0.0f;
#pragma unroll
    for (int c = 0; c < dims_per_lane; ++c) {
      const std::int64_t d = lane + c * warp_size;
      if (d < head_dim) partial += query[d] * widen(key[d]);
    }
#pragma unroll
    for (int offset = warp_size / 2; offset > 0; offset /= 2) partial += __shfl_xor_sync(0xffffffffu, partial, offset);
    const float score = a.scale * partial;
    const float new_m = fmaxf(m, score);
    const float correction = expf(m - new_m);  // 0 on the first key (m = -inf)
    const float p = expf(score - new_m);
    l = l * correction + p;
#pragma unroll
    for (int c = 0; c < dims_per_lane; ++c) {
      const std::int64_t d = lane + c * warp_size;
      if (d < head_dim) acc[c] = acc[c] * correction + p * widen(value[d]);
    }
    m = new_m;
  }

  if (lane == 0) {
    warp_max[warp] = m;
    warp_sum[warp] = l;
  }
#pragma unroll
  for (int c = 0; c < dims_per_lane; ++c) {
    const std::int64_t d = lane + c * warp_size;
    if (d < head_dim) warp_acc[warp * head_dim + d] = acc[c];
  }
  __syncthreads();

  // A warp that saw no key has l = 0 and weighs nothing.
  float total_max = -INFINITY;
  for (int w = 0; w < num_warps; ++w)
    if (warp_sum[w] > 0.0f) total_max = fmaxf(total_max, warp_max[w]);
  float weight[num_warps];
  float total = 0.0f;
  for (int w = 0; w < num_warps; ++w) {
    weight[w] = warp_sum[w] > 0.0f ? expf(warp_max[w] - total_max) : 0.0f;
    total += warp_sum[w] * weight[w];
  }
  const float inv_total = total > 0.0f ? 1.0f / total : 0.0f;
  for (std::int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int w = 0; w < num_warps; ++w) sum += warp_acc[w * head_dim + d] * weight[w];
    dst[d] = sum * inv_total;
  }
}

}  // namespace

void launch_paged_attention(const paged_attention_args& args, cudaStream_t stream, attention_kernel kernel) {
  if (args.num_tokens < 0 || args.num_heads < 0 || args.num_kv_heads < 0 || args.head_dim < 0 ||
      args.num_seqs < 0 || args.max_blocks_per_seq < 0 || args.block_size <= 0 || args.num_blocks < 0)
    throw std::invalid_argument("launch_paged_attention: bad shape");
  if (args.num_tokens * args.num_heads * args.head_dim == 0) return;  // nothing to write, as on the CPU
  if (args.num_kv_heads == 0 || args.num_heads % args.num_kv_heads != 0)
    throw std::invalid_argument("launch_paged_attention: query heads are not a multiple of KV heads");
  if (args.head_dim > max_attention_head_dim)
    throw std::invalid_argument("launch_paged_attention: head_dim " + std::to_string(args.head_dim) + " exceeds " +
                                std::to_string(max_attention_head_dim));
  const std::int64_t num_items = args.num_tokens * args.num_heads;
  if (args.num_seqs == 0) throw std::invalid_argument("launch_paged_attention: rows without sequences");
  if (kernel == attention_kernel::grouped && grouped_attention_supports(args)) return launch_grouped_attention(args, stream);
  visit_kv_type(args.cache_type, "launch_paged_attention", [&](auto tag) {
    using KV = typename decltype(tag)::type;
    const std::size_t shared_bytes =
        static_cast<std::size_t>((1 + num_warps) * args.head_dim + 2 * num_warps) * sizeof(float);
    paged_attention_kernel<KV><<<static_cast<unsigned>(num_items), num_warps * warp_size, shared_bytes, stream>>>(args);
    CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace glm4::kernels::cuda
