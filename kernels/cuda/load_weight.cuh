// Device-side widening of a stored weight element to FP32 (F32, F16 or BF16 storage).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

__device__ __forceinline__ float load_weight(const void* base, std::int64_t index, dtype type) {
  switch (type) {
    case dtype::bf16: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[index]);
    case dtype::f16: return __half2float(static_cast<const __half*>(base)[index]);
    default: return static_cast<const float*>(base)[index];
  }
}

}  // namespace glm4::kernels::cuda
