#include "kernels/cuda/matvec.cuh"

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/kv_element.cuh"
#include "kernels/cuda/load_weight.cuh"
#include "kernels/cuda/matmul_kernel.hpp"
#include "kernels/cuda/warp_reduce.cuh"

namespace glm4::kernels::cuda {
namespace {

constexpr int matvec_warps = 8;
constexpr int per_load = 8;  // 2-byte weights in one 16-byte load

// The two 2-byte weights of `word`, the lower half first (as memory holds them), widened to FP32.
__device__ __forceinline__ float2 widen_pair(std::uint32_t word, const __nv_bfloat16*) {
  return make_float2(__uint_as_float(word << 16), __uint_as_float(word & 0xffff0000u));
}
__device__ __forceinline__ float2 widen_pair(std::uint32_t word, const __half*) {
  __half_raw low, high;
  low.x = static_cast<unsigned short>(word & 0xffffu);
  high.x = static_cast<unsigned short>(word >> 16);
  return make_float2(__half2float(__half(low)), __half2float(__half(high)));
}

// Warp w of block b makes column b * matvec_warps + w of every row of out. Lanes take 8 consecutive
// weights each (a warp reads 512 contiguous bytes per step), or one at a time when `vectorised` is
// false; each lane's partial sums meet in a shuffle reduction.
template <class W, int Rows>
__global__ void __launch_bounds__(matvec_warps * warp_size)
    matvec_kernel(float* out, const float* x, const W* w, const void* bias, dtype bias_type, std::int64_t n,
                  std::int64_t k, bool vectorised) {
  const int lane = static_cast<int>(threadIdx.x) % warp_size;
  const std::int64_t column = static_cast<std::int64_t>(blockIdx.x) * matvec_warps + threadIdx.x / warp_size;
  if (column >= n) return;  // the whole warp: no shuffle below waits for it
  const W* row = w + column * k;
  float sums[Rows];
#pragma unroll
  for (int r = 0; r < Rows; ++r) sums[r] = 0.0f;
  if (vectorised) {
#pragma unroll 4  // loads of several steps in flight: the kernel waits on memory, not arithmetic
    for (std::int64_t i = static_cast<std::int64_t>(lane) * per_load; i < k; i += warp_size * per_load) {
      const uint4 packed = *reinterpret_cast<const uint4*>(row + i);
      const float2 w01 = widen_pair(packed.x, row), w23 = widen_pair(packed.y, row);
      const float2 w45 = widen_pair(packed.z, row), w67 = widen_pair(packed.w, row);
#pragma unroll
      for (int r = 0; r < Rows; ++r) {
        const float4 low = *reinterpret_cast<const float4*>(x + r * k + i);
        const float4 high = *reinterpret_cast<const float4*>(x + r * k + i + 4);
        sums[r] += w01.x * low.x + w01.y * low.y + w23.x * low.z + w23.y * low.w + w45.x * high.x + w45.y * high.y +
                   w67.x * high.z + w67.y * high.w;
      }
    }
  } else {
    for (std::int64_t i = lane; i < k; i += warp_size) {
      const float weight = widen(row[i]);
#pragma unroll
      for (int r = 0; r < Rows; ++r) sums[r] += weight * x[r * k + i];
    }
  }
  const float added = bias != nullptr ? load_weight(bias, column, bias_type) : 0.0f;
#pragma unroll
  for (int r = 0; r < Rows; ++r) {
    const float total = warp_sum(sums[r]);
    if (lane == 0) out[r * n + column] = total + added;
  }
}

bool aligned_16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

template <class W, int Rows>
void launch_rows(float* out, const float* x, const void* w, const void* bias, dtype bias_type, std::int64_t n,
                 std::int64_t k, cudaStream_t stream) {
  const bool vectorised = k % per_load == 0 && aligned_16(w) && aligned_16(x);
  const auto blocks = static_cast<unsigned>((n + matvec_warps - 1) / matvec_warps);
  matvec_kernel<W, Rows><<<blocks, matvec_warps * warp_size, 0, stream>>>(out, x, static_cast<const W*>(w), bias,
                                                                           bias_type, n, k, vectorised);
  CUDA_CHECK(cudaGetLastError());
}

template <class W>
void launch_typed(float* out, const float* x, const void* w, const void* bias, dtype bias_type, std::int64_t rows,
                  std::int64_t n, std::int64_t k, cudaStream_t stream) {
  switch (rows) {
    case 1: return launch_rows<W, 1>(out, x, w, bias, bias_type, n, k, stream);
    case 2: return launch_rows<W, 2>(out, x, w, bias, bias_type, n, k, stream);
    case 3: return launch_rows<W, 3>(out, x, w, bias, bias_type, n, k, stream);
    case 4: return launch_rows<W, 4>(out, x, w, bias, bias_type, n, k, stream);
    case 5: return launch_rows<W, 5>(out, x, w, bias, bias_type, n, k, stream);
    case 6: return launch_rows<W, 6>(out, x, w, bias, bias_type, n, k, stream);
    case 7: return launch_rows<W, 7>(out, x, w, bias, bias_type, n, k, stream);
    case 8: return launch_rows<W, 8>(out, x, w, bias, bias_type, n, k, stream);
    default: break;
  }
  throw std::invalid_argument("launch_matvec: " + std::to_string(rows) + " rows; it takes 1 to " +
                              std::to_string(max_matvec_rows));
}

}  // namespace

void launch_matvec(float* out, const float* x, const void* w, dtype w_type, const void* bias, dtype bias_type,
                   std::int64_t rows, std::int64_t n, std::int64_t k, cudaStream_t stream) {
  static_assert(max_matvec_rows == 8, "launch_typed instantiates rows 1 to 8");
  if (n <= 0 || k <= 0) throw std::invalid_argument("launch_matvec: bad shape");
  if (bias_type == dtype::i32) throw std::invalid_argument("launch_matvec: bias must be a float type");
  switch (w_type) {
    case dtype::bf16: return launch_typed<__nv_bfloat16>(out, x, w, bias, bias_type, rows, n, k, stream);
    case dtype::f16: return launch_typed<__half>(out, x, w, bias, bias_type, rows, n, k, stream);
    default: break;
  }
  throw std::invalid_argument("launch_matvec: weights must be F16 or BF16, not " + std::string(dtype_name(w_type)));
}

}  // namespace glm4::kernels::cuda
