// Row gather on the GPU: picks the hidden rows that need logits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace glm4::kernels::cuda {

/// out (num_rows, hidden) = x[rows[r]] for x (num_x_rows, hidden), all F32; out must not alias x.
/// A device-side row index outside [0, num_x_rows) gives a row of NaN.
void launch_gather_rows(float* out, const float* x, const std::int32_t* rows, std::int64_t num_rows,
                        std::int64_t num_x_rows, std::int64_t hidden, cudaStream_t stream);

}  // namespace glm4::kernels::cuda
