// The element types a paged KV cache is stored in on the GPU (F32, F16, BF16): widening to FP32
// where attention reads it, narrowing where store_kv writes it, and the host-side choice of type.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <stdexcept>
#include <string>

#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ float widen(__half x) { return __half2float(x); }
__device__ __forceinline__ float widen(__nv_bfloat16 x) { return __bfloat162float(x); }

/// Round to nearest even, as the CPU backend stores; F16 clamps to +-f16_max (NaN stays NaN).
__device__ __forceinline__ void narrow_to(float* dst, float x) { *dst = x; }
__device__ __forceinline__ void narrow_to(__half* dst, float x) {
  *dst = __float2half_rn(x > f16_max ? f16_max : (x < -f16_max ? -f16_max : x));
}
__device__ __forceinline__ void narrow_to(__nv_bfloat16* dst, float x) { *dst = __float2bfloat16_rn(x); }

template <class T> struct kv_type_tag {
  using type = T;
};

/// Calls fn(kv_type_tag<T>{}) with T the device element type of a cache of `type`; throws
/// std::invalid_argument naming `what` for a type a cache cannot have.
template <class Fn> void visit_kv_type(dtype type, const char* what, Fn&& fn) {
  switch (type) {
    case dtype::f32: return fn(kv_type_tag<float>{});
    case dtype::f16: return fn(kv_type_tag<__half>{});
    case dtype::bf16: return fn(kv_type_tag<__nv_bfloat16>{});
    default: break;
  }
  throw std::invalid_argument(std::string(what) + ": a KV cache holds F32, F16 or BF16, not " +
                              std::string(dtype_name(type)));
}

}  // namespace glm4::kernels::cuda
