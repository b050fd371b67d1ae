// Helpers for GPU tests: skip cleanly without a GPU, own device buffers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

namespace glm4::test {

/// True when a CUDA device is usable; otherwise prints the "GPU test skipped" marker ctest looks for.
bool have_gpu_or_skip();

/// A device copy of a host vector, freed on destruction.
template <class T>
class device_vector {
 public:
  explicit device_vector(const std::vector<T>& host);
  explicit device_vector(std::size_t count);
  ~device_vector();
  device_vector(const device_vector&) = delete;
  device_vector& operator=(const device_vector&) = delete;
  T* get() const { return data_; }
  std::vector<T> to_host() const;

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace glm4::test

#include "tests/kernels/cuda/gpu_test_support_impl.hpp"
