// RMSNorm on the GPU: one block per row, FP32 reduction whatever the weight type.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

/// out (rows, hidden) = x / sqrt(mean(x^2) + eps) * weight; x, out F32 (may alias); weight (hidden) of weight_type.
void launch_rms_norm(float* out, const float* x, const void* weight, dtype weight_type, std::int64_t rows,
                     std::int64_t hidden, float eps, cudaStream_t stream);

}  // namespace glm4::kernels::cuda
