#include "kernels/cuda/swiglu.cuh"

#include <stdexcept>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/launch_config.cuh"

namespace glm4::kernels::cuda {
namespace {

__global__ void swiglu_kernel(float* out, const float* gate_up, std::int64_t count, std::int64_t ffn) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t t = i / ffn, f = i % ffn;
    const float g = gate_up[t * 2 * ffn + f];
    out[i] = g / (1.0f + expf(-g)) * gate_up[t * 2 * ffn + ffn + f];
  }
}

}  // namespace

void launch_swiglu(float* out, const float* gate_up, std::int64_t num_tokens, std::int64_t ffn, cudaStream_t stream) {
  if (num_tokens < 0 || ffn < 0) throw std::invalid_argument("launch_swiglu: bad shape");
  const std::int64_t count = num_tokens * ffn;
  if (count == 0) return;
  swiglu_kernel<<<elementwise_blocks(count), elementwise_threads, 0, stream>>>(out, gate_up, count, ffn);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
