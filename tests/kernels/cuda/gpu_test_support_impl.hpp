// Template bodies of device_vector (included by gpu_test_support.hpp).
#pragma once

#include "kernels/cuda/cuda_check.hpp"

namespace glm4::test {

template <class T>
device_vector<T>::device_vector(std::size_t count) : count_(count) {
  CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), count * sizeof(T)));
}

template <class T>
device_vector<T>::device_vector(const std::vector<T>& host) : device_vector(host.size()) {
  CUDA_CHECK(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
}

template <class T>
device_vector<T>::~device_vector() {
  cudaFree(data_);
}

template <class T>
std::vector<T> device_vector<T>::to_host() const {
  std::vector<T> host(count_);
  CUDA_CHECK(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

}  // namespace glm4::test
