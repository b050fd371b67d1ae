// Small batches against F16/BF16 weights without cuBLAS: the memory-bound shape of decode.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

/// out (rows, n) F32 = x (rows, k) F32 . w^T (+ bias) for 1 <= rows <= max_matvec_rows
/// (matmul_kernel.hpp); w (n, k) F16 or BF16 as torch stores it; bias (n) of bias_type or nullptr.
/// One warp per output column reads that weight row once for every row of x, in 16-byte loads when
/// k is a multiple of 8 and the buffers are 16-byte aligned, and accumulates in FP32 against x as it
/// is: no narrowed copy of x, so no F16 range to guard either.
void launch_matvec(float* out, const float* x, const void* w, dtype w_type, const void* bias, dtype bias_type,
                   std::int64_t rows, std::int64_t n, std::int64_t k, cudaStream_t stream);

}  // namespace glm4::kernels::cuda
