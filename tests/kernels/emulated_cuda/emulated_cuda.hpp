// The seam between the two halves of the host emulation of CUDA: kernels (device_emulation.hpp) and the
// runtime, cuBLAS and NCCL entry points our backend calls (emulated_runtime.cpp, emulated_cublas.cpp).
// Work runs on the calling thread in stream order, at once, or is appended to a stream capture.
#pragma once

#include <cuda_runtime.h>

#include <functional>

namespace glm4::emulated_cuda {

/// Runs `work` now, or appends it to the graph being captured on `stream` (run by cudaGraphLaunch).
/// What `work` throws reaches the caller: a kernel fault fails the test at the launch that caused it.
void enqueue(cudaStream_t stream, std::function<void()> work);

/// The error the next cudaGetLastError returns (and clears).
void set_last_error(cudaError_t error);

/// Compute capability of the emulated GPU times ten: GLM4_EMULATED_SM, default 90.
int emulated_sm();

/// Streaming multiprocessors of the emulated GPU.
inline constexpr int emulated_sm_count = 8;

}  // namespace glm4::emulated_cuda
