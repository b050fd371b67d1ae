#include "kernels/cuda/matmul.cuh"

#include <cub/block/block_reduce.cuh>

#include <limits>
#include <stdexcept>

#include "kernels/f16_row_scale.hpp"

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

constexpr int narrow_threads = 256;

// One block per row: the row's largest magnitude picks its power-of-two scale (f16_row_scale.hpp),
// the row goes to F16 at that scale, and row_unscale[row] keeps the power that undoes it.
__global__ void __launch_bounds__(narrow_threads)
    narrow_rows_f16_kernel(__half* dst, float* row_unscale, const float* x, std::int64_t k) {
  using block_max = cub::BlockReduce<float, narrow_threads>;
  __shared__ typename block_max::TempStorage reduce_storage;
  __shared__ int shared_exponent;
  const float* src = x + blockIdx.x * k;
  __half* out = dst + blockIdx.x * k;
  float mine = 0.0f;
  for (std::int64_t i = threadIdx.x; i < k; i += blockDim.x) mine = fmaxf(mine, fabsf(src[i]));  // NaN ignored
  const float absmax = block_max(reduce_storage).Reduce(mine, [](float a, float b) { return fmaxf(a, b); });
  if (threadIdx.x == 0) {
    shared_exponent = f16_row_scale_exponent(absmax);
    row_unscale[blockIdx.x] = ldexpf(1.0f, shared_exponent);
  }
  __syncthreads();
  const float scale = ldexpf(1.0f, -shared_exponent);
  for (std::int64_t i = threadIdx.x; i < k; i += blockDim.x) out[i] = __float2half_rn(src[i] * scale);
}

// out (rows, n) = out * row_unscale[row] (+ bias): undoes narrow_rows_f16_kernel's scales.
__global__ void unscale_rows_kernel(float* out, const float* row_unscale, const void* bias, dtype bias_type,
                                    std::int64_t count, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const float value = out[i] * row_unscale[i / n];
    out[i] = bias != nullptr ? value + load_weight(bias, i % n, bias_type) : value;
  }
}

std::size_t aligned(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

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

std::size_t matmul_scratch_bytes(std::int64_t num_tokens, std::int64_t k, dtype w_type) {
  if (w_type == dtype::f32 || num_tokens <= 0 || k <= 0) return 0;
  const std::size_t narrowed = static_cast<std::size_t>(num_tokens * k) * dtype_size(w_type);
  if (w_type != dtype::f16) return narrowed;
  return aligned(narrowed) + static_cast<std::size_t>(num_tokens) * sizeof(float);  // then the row scales
}

void launch_matmul(cublasHandle_t handle, cudaStream_t stream, float* out, const float* x, void* x_scratch,
                   const void* w, dtype w_type, const void* bias, dtype bias_type, std::int64_t num_tokens,
                   std::int64_t n, std::int64_t k) {
  if (num_tokens < 0 || n <= 0 || k <= 0) throw std::invalid_argument("launch_matmul: bad shape");
  const cudaDataType_t type = cuda_type(w_type);
  if (num_tokens == 0) return;
  const void* activations = x;
  float* row_unscale = nullptr;
  if (w_type != dtype::f32) {
    if (x_scratch == nullptr) throw std::invalid_argument("launch_matmul: F16/BF16 weights need x_scratch");
    if (w_type == dtype::f16) {
      row_unscale = reinterpret_cast<float*>(static_cast<char*>(x_scratch) +
                                             aligned(static_cast<std::size_t>(num_tokens * k) * sizeof(__half)));
      narrow_rows_f16_kernel<<<static_cast<unsigned>(num_tokens), narrow_threads, 0, stream>>>(
          static_cast<__half*>(x_scratch), row_unscale, x, k);
      CUDA_CHECK(cudaGetLastError());
    } else {
      launch_convert(x_scratch, w_type, x, dtype::f32, num_tokens * k, stream);
    }
    activations = x_scratch;
  }
  // Row-major out (T, N) is column-major out^T (N, T) = w (N, K) . x^T (K, T); row-major w is
  // column-major (K, N), hence op T on it, and row-major x is column-major x^T (K, T) as is.
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, as_int(n), as_int(num_tokens), as_int(k), &alpha, w, type,
                            as_int(k), activations, type, as_int(k), &beta, out, CUDA_R_32F, as_int(n),
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  if (row_unscale != nullptr) {
    if (bias_type == dtype::i32) throw std::invalid_argument("launch_matmul: bias must be a float type");
    const std::int64_t count = num_tokens * n;
    unscale_rows_kernel<<<elementwise_blocks(count), elementwise_threads, 0, stream>>>(out, row_unscale, bias, bias_type,
                                                                                       count, n);
    CUDA_CHECK(cudaGetLastError());
  } else if (bias != nullptr) {
    launch_add_bias(out, bias, bias_type, num_tokens, n, stream);
  }
}

}  // namespace glm4::kernels::cuda
