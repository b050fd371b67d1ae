// Element type conversion on the GPU: activations narrowed for cuBLAS, BF16 weights stored as F16
// on pre-Ampere cards.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

/// dst[i] = src[i] for i < count, through F32, rounding to nearest even; float types only.
void launch_convert(void* dst, dtype dst_type, const void* src, dtype src_type, std::int64_t count,
                    cudaStream_t stream);

/// The largest |src[i]| over finite and infinite values (NaN ignored; 0 for count 0), written as
/// float bits to *device_result (4 bytes on the device); the caller reads it back.
void launch_abs_max(std::uint32_t* device_result, const void* src, dtype src_type, std::int64_t count,
                    cudaStream_t stream);

}  // namespace glm4::kernels::cuda
