// CUDA_CHECK: turns a failed CUDA runtime call into an exception naming the call, file and line.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace glm4::kernels::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
                           cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

}  // namespace glm4::kernels::cuda

#define CUDA_CHECK(call)                                                                  \
  do {                                                                                    \
    const cudaError_t glm4_cuda_status_ = (call);                                         \
    if (glm4_cuda_status_ != cudaSuccess)                                                 \
      ::glm4::kernels::cuda::throw_cuda_error(glm4_cuda_status_, #call, __FILE__, __LINE__); \
  } while (0)
