// CUBLAS_CHECK: turns a failed cuBLAS call into an exception naming the call, file and line.
#pragma once

#include <cublas_v2.h>

#include <stdexcept>
#include <string>

namespace glm4::kernels::cuda {

[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw std::runtime_error(std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
                           cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")");
}

}  // namespace glm4::kernels::cuda

#define CUBLAS_CHECK(call)                                                                      \
  do {                                                                                          \
    const cublasStatus_t glm4_cublas_status_ = (call);                                          \
    if (glm4_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                           \
      ::glm4::kernels::cuda::throw_cublas_error(glm4_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)
