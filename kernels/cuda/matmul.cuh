// Linear layers on the GPU through cuBLAS, FP32 accumulation whatever the weight type.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

/// out (T, N) F32 = x (T, K) F32 . w^T (+ bias); w (N, K) F32, F16 or BF16 as torch stores it;
/// bias (N) of bias_type or nullptr. For F16/BF16 weights x is first narrowed to w's type in
/// x_scratch (matmul_scratch_bytes of it), then cublasGemmEx multiplies with CUBLAS_COMPUTE_32F
/// into F32 (F32 weights: plain FP32 GEMM, no TF32). F16 rows beyond F16's range are scaled by a
/// power of two and scaled back in the output (kernels/f16_row_scale.hpp). `handle` must already
/// be bound to `stream`.
void launch_matmul(cublasHandle_t handle, cudaStream_t stream, float* out, const float* x, void* x_scratch,
                   const void* w, dtype w_type, const void* bias, dtype bias_type, std::int64_t num_tokens,
                   std::int64_t n, std::int64_t k);

/// The x_scratch launch_matmul needs for T tokens of width K against weights of w_type.
std::size_t matmul_scratch_bytes(std::int64_t num_tokens, std::int64_t k, dtype w_type);

/// out (rows, n) += bias (n) widened to F32.
void launch_add_bias(float* out, const void* bias, dtype bias_type, std::int64_t rows, std::int64_t n,
                     cudaStream_t stream);

}  // namespace glm4::kernels::cuda
