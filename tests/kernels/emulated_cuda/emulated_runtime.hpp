// What the emulated runtime (emulated_runtime.cpp) offers the rest of the emulation beyond the seam
// (emulated_cuda.hpp): for cuBLAS to report a refused launch itself and to refuse what a GPU would
// fault on.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace glm4::emulated_cuda {

/// As enqueue, but the error of a refused submission (unknown stream, invalidated capture) is
/// returned rather than left for cudaGetLastError.
cudaError_t try_enqueue(cudaStream_t stream, std::function<void()> work);

/// cudaErrorNoKernelImageForDevice when the emulated GPU (GLM4_EMULATED_SM) runs none of the binary's
/// architectures (GLM4_CUDA_ARCHITECTURES), as a driver finds at the first launch; else cudaSuccess.
cudaError_t kernel_image_status();

/// GLM4_EMULATED_SM's value (null or empty: the default, 90) as emulated_sm() reads it; throws
/// std::invalid_argument for anything but a compute capability times ten.
int parse_emulated_sm(const char* text);

/// Throws std::runtime_error naming `who` when the live allocation holding `address` has had bytes
/// written outside its size but within the slack around it (before its start on the same pages, or
/// past its end in its last 256-byte granule): writes a GPU does not fault on and compute-sanitizer's
/// memcheck reports. Does nothing for an address outside every allocation.
void expect_slack_untouched(const void* address, const std::string& who);

/// Whether [address, address + bytes) lies inside one live cudaMalloc allocation.
bool in_device_allocation(const void* address, std::size_t bytes);

inline constexpr int max_emulated_gpus = 8;

/// GLM4_EMULATED_GPUS (null or empty: 1); throws std::invalid_argument unless it is 1..8.
int parse_emulated_gpu_count(const char* text);
/// How many GPUs the emulation has: GLM4_EMULATED_GPUS, read once.
int emulated_gpu_count();
/// This thread's current GPU (cudaSetDevice).
int current_gpu();
/// The GPU a stream was made on (the current one for the default streams); none for an unknown stream.
std::optional<int> stream_gpu(cudaStream_t stream);
/// The GPU whose cudaMalloc holds `address`; none when no allocation does.
std::optional<int> allocation_gpu(const void* address);

}  // namespace glm4::emulated_cuda
