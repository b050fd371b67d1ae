// NCCL's datatypes and reductions as the emulated NCCL (emulated_nccl_meetings.cpp) computes them: element by
// element over the ranks' inputs in rank order, so every rank of a collective gets the same bits.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <nccl.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace glm4::emulated_cuda::nccl_types {

inline std::size_t type_size(ncclDataType_t type) {
  switch (type) {
    case ncclInt8:
    case ncclUint8:
    case ncclFloat8e4m3:
    case ncclFloat8e5m2: return 1;
    case ncclFloat16:
    case ncclBfloat16: return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
    default: return 0;  // not a type NCCL knows
  }
}

inline const char* type_name(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: return "ncclInt8";
    case ncclUint8: return "ncclUint8";
    case ncclInt32: return "ncclInt32";
    case ncclUint32: return "ncclUint32";
    case ncclInt64: return "ncclInt64";
    case ncclUint64: return "ncclUint64";
    case ncclFloat16: return "ncclFloat16";
    case ncclFloat32: return "ncclFloat32";
    case ncclFloat64: return "ncclFloat64";
    case ncclBfloat16: return "ncclBfloat16";
    case ncclFloat8e4m3: return "ncclFloat8e4m3";
    case ncclFloat8e5m2: return "ncclFloat8e5m2";
    default: return "an unknown datatype";
  }
}

inline const char* op_name(ncclRedOp_t op) {
  switch (op) {
    case ncclSum: return "ncclSum";
    case ncclProd: return "ncclProd";
    case ncclMax: return "ncclMax";
    case ncclMin: return "ncclMin";
    case ncclAvg: return "ncclAvg";
    default: return "a custom op";
  }
}

// The arithmetic of one element type: narrow floating types compute in float and round after every
// step, as the GPU's kernels do.
template <class T>
struct arithmetic {
  using math = T;
  static T load(T v) { return v; }
  static T store(T v) { return v; }
};

template <>
struct arithmetic<__half> {
  using math = float;
  static float load(__half v) { return __half2float(v); }
  static __half store(float v) { return __float2half_rn(v); }
};

template <>
struct arithmetic<__nv_bfloat16> {
  using math = float;
  static float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

template <class Fp8>
struct fp8_arithmetic {
  using math = float;
  static float load(Fp8 v) { return static_cast<float>(v); }
  static Fp8 store(float v) { return Fp8(v); }
};

template <>
struct arithmetic<__nv_fp8_e4m3> : fp8_arithmetic<__nv_fp8_e4m3> {};
template <>
struct arithmetic<__nv_fp8_e5m2> : fp8_arithmetic<__nv_fp8_e5m2> {};

template <class M>
M combine(ncclRedOp_t op, M a, M b) {
  if constexpr (std::is_integral_v<M>) {
    using U = std::make_unsigned_t<M>;  // integers wrap, as on the GPU
    if (op == ncclProd) return static_cast<M>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
    if (op == ncclSum || op == ncclAvg) return static_cast<M>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    if (op == ncclProd) return a * b;
    if (op == ncclSum || op == ncclAvg) return a + b;
  }
  if (op == ncclMax) return a < b ? b : a;
  return b < a ? b : a;  // ncclMin
}

template <class T>
T element(const std::vector<std::byte>& bytes, std::size_t i) {
  T value;
  std::memcpy(static_cast<void*>(&value), bytes.data() + i * sizeof(T), sizeof(T));
  return value;
}

// Element i of every rank's input, combined in rank order.
template <class T>
void reduce_as(ncclRedOp_t op, const std::vector<std::vector<std::byte>>& inputs, std::byte* out,
               std::size_t elements) {
  using a = arithmetic<T>;
  using math = typename a::math;
  for (std::size_t i = 0; i < elements; ++i) {
    T acc = element<T>(inputs[0], i);
    for (std::size_t r = 1; r < inputs.size(); ++r)
      acc = a::store(combine<math>(op, a::load(acc), a::load(element<T>(inputs[r], i))));
    if (op == ncclAvg) acc = a::store(static_cast<math>(a::load(acc) / static_cast<math>(inputs.size())));
    std::memcpy(out + i * sizeof(T), static_cast<const void*>(&acc), sizeof(T));
  }
}

/// out[i] = inputs[0][i] op inputs[1][i] op ..., left to right (ncclAvg: that sum over the number of
/// inputs), for `elements` elements of `type`. Throws std::logic_error for a type NCCL does not have.
inline void reduce(ncclDataType_t type, ncclRedOp_t op, const std::vector<std::vector<std::byte>>& inputs,
                   std::byte* out, std::size_t elements) {
  switch (type) {
    case ncclInt8: return reduce_as<std::int8_t>(op, inputs, out, elements);
    case ncclUint8: return reduce_as<std::uint8_t>(op, inputs, out, elements);
    case ncclInt32: return reduce_as<std::int32_t>(op, inputs, out, elements);
    case ncclUint32: return reduce_as<std::uint32_t>(op, inputs, out, elements);
    case ncclInt64: return reduce_as<std::int64_t>(op, inputs, out, elements);
    case ncclUint64: return reduce_as<std::uint64_t>(op, inputs, out, elements);
    case ncclFloat16: return reduce_as<__half>(op, inputs, out, elements);
    case ncclFloat32: return reduce_as<float>(op, inputs, out, elements);
    case ncclFloat64: return reduce_as<double>(op, inputs, out, elements);
    case ncclBfloat16: return reduce_as<__nv_bfloat16>(op, inputs, out, elements);
    case ncclFloat8e4m3: return reduce_as<__nv_fp8_e4m3>(op, inputs, out, elements);
    case ncclFloat8e5m2: return reduce_as<__nv_fp8_e5m2>(op, inputs, out, elements);
    default: throw std::logic_error("emulated NCCL: reduce on an unchecked datatype");
  }
}

}  // namespace glm4::emulated_cuda::nccl_types
