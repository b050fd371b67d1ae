// Force-included ahead of each kernel source (.cu) compiled for the host emulation of CUDA. The build
// rewrites `kernel<<<grid, block, shared, stream>>>(args)` into
//   kernel | launch_config_of(launch_site{__FILE__, __LINE__}, grid, block, shared, stream) | kernel_args(args)
// `extern __shared__ T name[];` into a pointer to the block's dynamic shared memory and `__shared__`
// storage into per-thread statics refilled for each block (rewrite_launches.cmake); this header gives
// the rest of CUDA's device dialect a host meaning.
#pragma once

#include <boost/pfr.hpp>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "tests/kernels/emulated_cuda/emulated_cuda.hpp"
#include "tests/kernels/emulated_cuda/emulated_runtime.hpp"
#include "tests/kernels/emulated_cuda/fiber_block.hpp"

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
// __shared__ never reaches here: rewrite_launches.cmake turns every use into per-thread storage.
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __CUDACC_VER_MAJOR__ (CUDART_VERSION / 1000)

#define threadIdx (::glm4::emulated_cuda::thread_index())
#define blockIdx (::glm4::emulated_cuda::block_index())
#define blockDim (::glm4::emulated_cuda::block_dim())
#define gridDim (::glm4::emulated_cuda::grid_dim())
#define warpSize 32

inline void __syncthreads() { ::glm4::emulated_cuda::sync_threads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::glm4::emulated_cuda::sync_warp(mask); }

template <class T>
T __shfl_sync(unsigned mask, T value, int source_lane, int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  const unsigned lane = ::glm4::emulated_cuda::lane_id();
  // As on the GPU, the source lane is taken modulo the width (a negative one too).
  const unsigned segment_mask = static_cast<unsigned>(width - 1);
  const unsigned source = (lane & ~segment_mask) + (static_cast<unsigned>(source_lane) & segment_mask);
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = ::glm4::emulated_cuda::exchange_in_warp(mask, bits, source);
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  const unsigned lane = ::glm4::emulated_cuda::lane_id();
  const unsigned source = lane ^ static_cast<unsigned>(lane_mask);
  // Past the width a lane reads its own value, as on the GPU.
  const unsigned within = (source & ~static_cast<unsigned>(width - 1)) == (lane & ~static_cast<unsigned>(width - 1))
                              ? source % static_cast<unsigned>(width)
                              : lane % static_cast<unsigned>(width);
  return __shfl_sync(mask, value, static_cast<int>(within), width);
}

// Atomic operations, so that the racecheck tests' ThreadSanitizer tells them from plain read-modify-writes.
template <class T>
T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value, std::memory_order_relaxed);
}
// Stores `value` where `replaces(old, value)`; returns the old value, as atomicMax and atomicMin do.
template <class T, class Replaces>
T atomic_replace_if(T* address, T value, Replaces replaces) {
  std::atomic_ref<T> target(*address);
  T old = target.load(std::memory_order_relaxed);
  while (replaces(old, value) && !target.compare_exchange_weak(old, value, std::memory_order_relaxed)) {
  }
  return old;
}
template <class T>
T atomicMax(T* address, T value) {
  return atomic_replace_if(address, value, [](T old, T v) { return old < v; });
}
template <class T>
T atomicMin(T* address, T value) {
  return atomic_replace_if(address, value, [](T old, T v) { return v < old; });
}

template <class T>
T max(T a, T b) {
  return a < b ? b : a;
}
template <class T>
T min(T a, T b) {
  return b < a ? b : a;
}

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __fmul_rn(float a, float b) {
  volatile float product = a * b;  // never fused into a neighbouring add
  return product;
}
inline float __int_as_float(int bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}
inline unsigned __float_as_uint(float value) {
  unsigned bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}
inline float __uint_as_float(unsigned bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// nvcc's runtime header adds this overload for kernels; the host one takes `const void*` only.
template <class... Params>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, void (*kernel)(Params...)) {
  return cudaFuncGetAttributes(attributes, reinterpret_cast<const void*>(kernel));
}

namespace glm4::emulated_cuda {

template <class T>
T* dynamic_shared() {
  static_assert(alignof(T) <= 16, "CUDA aligns dynamic shared memory to 16 bytes");
  return static_cast<T*>(dynamic_shared_memory());
}

/// Made where a kernel declares __shared__ storage (rewrite_launches.cmake adds it): the first thread of
/// each block to get there fills the storage with NaN bytes, since a block's shared memory starts undefined.
class fresh_shared_memory {
 public:
  fresh_shared_memory(void* storage, std::size_t bytes) { note_static_shared_memory(storage, bytes); }
};

/// Where a kernel is launched in its .cu (the rewritten source keeps the .cu's lines), for messages.
struct launch_site {
  const char* file;
  int line;

  std::string text() const {
    const std::string path(file);
    return path.substr(path.find_last_of('/') + 1) + ":" + std::to_string(line);
  }
};

struct launch_config {
  launch_shape shape;
  cudaStream_t stream = nullptr;
  launch_site site;
};

inline launch_config launch_config_of(launch_site site, dim3 grid, dim3 block, std::size_t shared_bytes = 0,
                                      cudaStream_t stream = nullptr) {
  return {{grid, block, shared_bytes}, stream, site};
}

template <class... Params>
struct pending_launch {
  void (*kernel)(Params...);
  launch_config config;
};

template <class... Params>
pending_launch<Params...> operator|(void (*kernel)(Params...), const launch_config& config) {
  return {kernel, config};
}

template <class... Args>
std::tuple<std::decay_t<Args>...> kernel_args(Args&&... args) {
  return {std::forward<Args>(args)...};
}

/// Calls visit(pointer, where) for every non-null pointer among a kernel's arguments and the fields of
/// its argument structs; `where` names the argument, and the field by its position.
template <class T, class Visit>
void for_each_pointer(const T& value, const std::string& where, Visit& visit) {
  if constexpr (std::is_pointer_v<T>) {
    if (value != nullptr) visit(static_cast<const void*>(value), where);
  } else if constexpr (std::is_aggregate_v<T> && std::is_class_v<T>) {
    std::size_t field = 0;
    boost::pfr::for_each_field(value, [&](const auto& member) {
      for_each_pointer(member, where + " field " + std::to_string(++field), visit);
    });
  }
}

template <class... Params, class Visit>
void for_each_pointer_argument(const std::tuple<Params...>& params, Visit&& visit) {
  std::size_t position = 0;
  std::apply([&](const auto&... each) {
    (for_each_pointer(each, "argument " + std::to_string(++position), visit), ...);
  }, params);
}

/// Throws when a pointer argument is not memory of `device`: a GPU faults on host addresses, and on
/// other GPUs' memory without peer access (which the emulation never grants).
template <class... Params>
void expect_device_pointers(const std::tuple<Params...>& params, int device, const launch_site& site) {
  for_each_pointer_argument(params, [&](const void* pointer, const std::string& where) {
    const std::optional<int> owner = allocation_gpu(pointer);
    if (!owner)
      throw std::runtime_error("emulated CUDA: kernel at " + site.text() + ": " + where +
                               " is not device memory (a host pointer, or freed)");
    if (*owner != device)
      throw std::runtime_error("emulated CUDA: kernel at " + site.text() + ": " + where + " is on GPU " +
                               std::to_string(*owner) + ", the kernel runs on GPU " + std::to_string(device));
  });
}

/// After a kernel: throws when it wrote into the slack around a buffer it was given (past the end of
/// the allocation within its last granule, or before its start), which a GPU would not fault on.
template <class... Params>
void expect_writes_in_bounds(const std::tuple<Params...>& params, const launch_site& site) {
  for_each_pointer_argument(params, [&](const void* pointer, const std::string& where) {
    expect_slack_untouched(pointer, "the kernel at " + site.text() + " (" + where + ")");
  });
}

/// Starts the kernel as CUDA does: a refused shape is a launch error for cudaGetLastError, and the
/// arguments are copied at the launch, which a graph keeps.
template <class... Params, class... Args>
void operator|(const pending_launch<Params...>& launch, std::tuple<Args...> args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
  if (invalid_launch_reason(launch.config.shape) != nullptr) {
    set_last_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (kernel_image_status() != cudaSuccess) {  // "no kernel image is available for execution on the device"
    set_last_error(kernel_image_status());
    return;
  }
  // CUDA refuses a launch into a stream of another GPU than the current one.
  const std::optional<int> stream_device = stream_gpu(launch.config.stream);
  if (stream_device != current_gpu()) {
    set_last_error(cudaErrorInvalidResourceHandle);
    return;
  }
  const int device = *stream_device;
  auto params = std::apply([](auto&... a) { return std::tuple<std::decay_t<Params>...>(a...); }, args);
  enqueue(launch.config.stream, [kernel = launch.kernel, shape = launch.config.shape, site = launch.config.site,
                                 params, device] {
    expect_device_pointers(params, device, site);  // when it runs: a graph replay may outlive the buffers
    try {
      run_grid(shape, [&] { std::apply(kernel, params); });
    } catch (const launch_refused& refused) {
      throw std::runtime_error("emulated CUDA: the kernel at " + site.text() + " was launched with " + refused.what());
    }
    expect_writes_in_bounds(params, site);
  });
}

}  // namespace glm4::emulated_cuda
