#include "kernels/cuda/convert.cuh"

#include <stdexcept>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/launch_config.cuh"
#include "kernels/cuda/load_weight.cuh"

namespace glm4::kernels::cuda {
namespace {

__global__ void convert_kernel(void* dst, dtype dst_type, const void* src, dtype src_type, std::int64_t count) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float value = load_weight(src, i, src_type);
    switch (dst_type) {
      case dtype::bf16: static_cast<__nv_bfloat16*>(dst)[i] = __float2bfloat16_rn(value); break;
      case dtype::f16: static_cast<__half*>(dst)[i] = __float2half_rn(value); break;
      default: static_cast<float*>(dst)[i] = value; break;
    }
  }
}

// Non-negative floats order like their bit patterns, so atomicMax on the bits finds the largest.
__global__ void abs_max_kernel(std::uint32_t* result, const void* src, dtype src_type, std::int64_t count) {
  std::uint32_t mine = 0;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float value = fabsf(load_weight(src, i, src_type));
    if (value == value) mine = max(mine, __float_as_uint(value));
  }
  if (mine != 0) atomicMax(result, mine);
}

}  // namespace

void launch_abs_max(std::uint32_t* device_result, const void* src, dtype src_type, std::int64_t count,
                    cudaStream_t stream) {
  if (count < 0) throw std::invalid_argument("launch_abs_max: negative count");
  if (src_type == dtype::i32) throw std::invalid_argument("launch_abs_max: float types only");
  CUDA_CHECK(cudaMemsetAsync(device_result, 0, sizeof(std::uint32_t), stream));
  if (count == 0) return;
  abs_max_kernel<<<elementwise_blocks(count), elementwise_threads, 0, stream>>>(device_result, src, src_type, count);
  CUDA_CHECK(cudaGetLastError());
}

void launch_convert(void* dst, dtype dst_type, const void* src, dtype src_type, std::int64_t count,
                    cudaStream_t stream) {
  if (count < 0) throw std::invalid_argument("launch_convert: negative count");
  if (dst_type == dtype::i32 || src_type == dtype::i32) throw std::invalid_argument("launch_convert: float types only");
  if (count == 0) return;
  convert_kernel<<<elementwise_blocks(count), elementwise_threads, 0, stream>>>(dst, dst_type, src, src_type, count);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
