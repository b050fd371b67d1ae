// The emulated CUDA runtime's own state, shared by its files (emulated_runtime.cpp, emulated_memory_calls.cpp,
// emulated_stream_calls.cpp); the rest of the emulation uses emulated_runtime.hpp.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_runtime.hpp"

namespace glm4::emulated_cuda {
using work_list = std::vector<std::function<void()>>;
}  // namespace glm4::emulated_cuda

// The runtime's handle types point to these (incomplete in the CUDA headers).
struct CUstream_st {
  unsigned flags = cudaStreamDefault;
  int device = 0;  // current when it was made
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id capturing_thread;
  glm4::emulated_cuda::work_list recorded;
};

struct CUgraph_st {
  glm4::emulated_cuda::work_list work;
};

struct CUgraphExec_st {
  glm4::emulated_cuda::work_list work;
};

namespace glm4::emulated_cuda {

inline constexpr std::size_t device_memory_bytes = std::size_t{8} << 30;
inline constexpr std::size_t allocation_granule = 256;

struct runtime_state {
  std::mutex mutex;
  struct allocation {
    std::size_t bytes = 0;  // as asked for
    int device = 0;
  };
  std::map<std::uintptr_t, allocation> allocations;  // by base address
  std::vector<std::size_t> allocated_bytes = std::vector<std::size_t>(max_emulated_gpus);  // per device, whole granules
  std::set<cudaStream_t> streams;
};

/// The one runtime state of the process (never destroyed).
runtime_state& state();

extern thread_local cudaError_t last_error;
extern thread_local int current_device;

/// Returns `error`, leaving it for cudaGetLastError unless it is cudaSuccess.
cudaError_t result(cudaError_t error);

/// `bytes` rounded up to whole allocation granules.
std::size_t granules(std::size_t bytes);

bool is_default_stream(cudaStream_t stream);
bool is_legacy_stream(cudaStream_t stream);

// These expect state().mutex held.
bool known_stream(const runtime_state& s, cudaStream_t stream);
bool inside_allocation(const runtime_state& s, const void* address, std::size_t bytes);
/// Whether a call that may synchronize must be refused for a capture (which it then invalidates).
bool refuse_unsafe_call(runtime_state& s);
/// Whether work on the legacy stream meets a capturing blocking stream (whose capture it then invalidates).
bool breaks_blocking_capture(runtime_state& s);

/// Appends `work` to the capture of `stream`, or runs it now.
cudaError_t submit(cudaStream_t stream, std::function<void()>& work);

}  // namespace glm4::emulated_cuda
