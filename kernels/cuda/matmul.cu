#include "kernels/cuda/matmul.cuh"

#include <limits>
#include <stdexcept>

#include "kernels/cuda/cublas_check.hpp"
#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/launch_config.cuh"
#include "kernels/cuda/load_weight.cuh"

namespace glm4::kernels::cuda {
namespace {

__global__ void add_bias_kernel(float* out, const void* bias, dtype bias_type, std::int64_t count, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    out[i] += load_weight(bias, i % n, bias_type);
}

cudaDataType_t cuda_type(dtype type) {
  switch (type) {
    case dtype::f16: return CUDA_R_16F;
    case dtype::bf16: return CUDA_R_16BF;
    case dtype::f32: return CUDA_R_32F;
    default: throw std::invalid_argument("launch_matmul: weights must be F32, F16 or BF16");
  }
}

int as_int(std::int64_t value) {
  if (value > std::numeric_limits<int>::max()) throw std::invalid_argument("launch_matmul: dimension exceeds int");
  return static_cast<int>(value);
}

}  // namespace

void launch_add_bias(float* out, const void* bias, dtype bias_type, std::int64_t rows, std::int64_t n,
                     cudaStream_t stream) {
  if (rows < 0 || n <= 0) throw std::invalid_argument("launch_add_bias: bad shape");
  if (bias_type == dtype::i32) throw std::invalid_argument("launch_add_bias: bias must be a float type");
  const std::int64_t count = rows * n;
  if (count == 0) return;
  add_bias_kernel<<<elementwise_blocks(count), elementwise_threads, 0, stream>>>(out, bias, bias_type, count, n);
  CUDA_CHECK(cudaGetLastError());
}

void launch_matmul(cublasHandle_t handle, cudaStream_t stream, float* out, const float* x, void* x_scratch,
                   const void* w, dtype w_type, const void* bias, dtype bias_type, std::int64_t num_tokens,
                   std::int64_t n, std::int64_t k) {
  if (num_tokens < 0 || n <= 0 || k <= 0) throw std::invalid_argument("launch_matmul: bad shape");
  const cudaDataType_t type = cuda_type(w_type);
  if (num_tokens == 0) return;
  const void* activations = x;
  if (w_type != dtype::f32) {
    if (x_scratch == nullptr) throw std::invalid_argument("launch_matmul: F16/BF16 weights need x_scratch");
    launch_convert(x_scratch, w_type, x, dtype::f32, num_tokens * k, stream);
    activations = x_scratch;
  }
  // Row-major out (T, N) is column-major out^T (N, T) = w (N, K) . x^T (K, T); row-major w is
  // column-major (K, N), hence op T on it, and row-major x is column-major x^T (K, T) as is.
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, as_int(n), as_int(num_tokens), as_int(k), &alpha, w, type,
                            as_int(k), activations, type, as_int(k), &beta, out, CUDA_R_32F, as_int(n),
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  if (bias != nullptr) launch_add_bias(out, bias, bias_type, num_tokens, n, stream);
}

}  // namespace glm4::kernels::cuda
