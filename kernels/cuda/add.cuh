// In-place element-wise add on the GPU: the residual connections.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace glm4::kernels::cuda {

/// x[i] += y[i] for i < count; F32.
void launch_add_inplace(float* x, const float* y, std::int64_t count, cudaStream_t stream);

}  // namespace glm4::kernels::cuda
