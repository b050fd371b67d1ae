#include "kernels/cuda/add.cuh"

#include <stdexcept>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/launch_config.cuh"

namespace glm4::kernels::cuda {
namespace {

__global__ void add_inplace_kernel(float* x, const float* y, std::int64_t count) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

}  // namespace

void launch_add_inplace(float* x, const float* y, std::int64_t count, cudaStream_t stream) {
  if (count < 0) throw std::invalid_argument("launch_add_inplace: negative count");
  if (count == 0) return;
  add_inplace_kernel<<<elementwise_blocks(count), elementwise_threads, 0, stream>>>(x, y, count);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
