#include "kernels/cuda/rotary.cuh"

#include <algorithm>
#include <stdexcept>

#include "kernels/cuda/cuda_check.hpp"

namespace glm4::kernels::cuda {
namespace {

// One block per token; each thread owns pairs i and applies their angle to every head.
__global__ void rotary_kernel(float* x, const std::int32_t* positions, const float* inv_freq, std::int64_t num_heads,
                              std::int64_t head_dim, std::int64_t num_pairs) {
  const std::int64_t t = blockIdx.x;
  const float position = static_cast<float>(positions[t]);
  for (std::int64_t i = threadIdx.x; i < num_pairs; i += blockDim.x) {
    // __fmul_rn keeps the product from being fused, matching the host's rounding of the angle.
    const float angle = __fmul_rn(position, inv_freq[i]);
    const float c = static_cast<float>(cos(static_cast<double>(angle)));
    const float s = static_cast<float>(sin(static_cast<double>(angle)));
    for (std::int64_t h = 0; h < num_heads; ++h) {
      float* pair = x + (t * num_heads + h) * head_dim + 2 * i;
      const float x0 = pair[0], x1 = pair[1];
      pair[0] = x0 * c - x1 * s;
      pair[1] = x1 * c + x0 * s;
    }
  }
}

}  // namespace

void launch_rotary(float* x, const std::int32_t* positions, const float* inv_freq, std::int64_t num_tokens,
                   std::int64_t num_heads, std::int64_t head_dim, std::int64_t rotary_dim, cudaStream_t stream) {
  if (num_tokens < 0 || num_heads < 0 || rotary_dim <= 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim)
    throw std::invalid_argument("launch_rotary: bad shape");
  if (num_tokens == 0 || num_heads == 0) return;
  const std::int64_t num_pairs = rotary_dim / 2;
  const int threads = static_cast<int>(std::min<std::int64_t>(128, (num_pairs + 31) / 32 * 32));
  rotary_kernel<<<static_cast<unsigned>(num_tokens), threads, 0, stream>>>(x, positions, inv_freq, num_heads, head_dim,
                                                                           num_pairs);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
