#include "kernels/cuda/rms_norm.cuh"

#include <stdexcept>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/load_weight.cuh"

namespace glm4::kernels::cuda {
namespace {

constexpr int block_threads = 256;

// One block per row: each thread sums squares over a strided slice, then a shared-memory tree reduction.
__global__ void rms_norm_kernel(float* out, const float* x, const void* weight, dtype weight_type, std::int64_t hidden,
                                float eps) {
  __shared__ float partial[block_threads];
  const float* row = x + blockIdx.x * hidden;
  float* out_row = out + blockIdx.x * hidden;
  float sum = 0.0f;
  for (std::int64_t i = threadIdx.x; i < hidden; i += blockDim.x) sum += row[i] * row[i];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  const float inv_rms = rsqrtf(partial[0] / static_cast<float>(hidden) + eps);
  for (std::int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    out_row[i] = row[i] * inv_rms * load_weight(weight, i, weight_type);
}

}  // namespace

void launch_rms_norm(float* out, const float* x, const void* weight, dtype weight_type, std::int64_t rows,
                     std::int64_t hidden, float eps, cudaStream_t stream) {
  if (rows < 0 || hidden < 0) throw std::invalid_argument("launch_rms_norm: bad shape");
  if (weight_type == dtype::i32) throw std::invalid_argument("launch_rms_norm: weight must be a float type");
  if (rows == 0 || hidden == 0) return;
  rms_norm_kernel<<<static_cast<unsigned>(rows), block_threads, 0, stream>>>(out, x, weight, weight_type, hidden, eps);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
