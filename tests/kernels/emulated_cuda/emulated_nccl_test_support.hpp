// What the emulated NCCL's tests share: rank threads, their GPUs and communicators, checks that throw.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <catch2/catch.hpp>

#include <cstddef>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

namespace glm4::test::emulated_nccl {

// Catch's assertions are not thread-safe: rank threads throw or return what they saw, and the test's
// own thread checks it.
inline void nccl_ok(ncclResult_t status, const char* call) {
  if (status != ncclSuccess)
    throw std::runtime_error(std::string(call) + ": " + ncclGetErrorString(status) + " (" +
                             ncclGetLastError(nullptr) + ")");
}

inline void cuda_ok(cudaError_t status, const char* call) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(call) + ": " + cudaGetErrorString(status));
}

#define NCCL_OK(call) ::glm4::test::emulated_nccl::nccl_ok((call), #call)
#define CUDA_OK(call) ::glm4::test::emulated_nccl::cuda_ok((call), #call)

inline void require_two_gpus() {
  int count = 0;
  REQUIRE(cudaGetDeviceCount(&count) == cudaSuccess);
  INFO("the emulated NCCL tests need two emulated GPUs: run them with GLM4_EMULATED_GPUS=2");
  REQUIRE(count >= 2);
}

// One rank's GPU: made current, a stream on it, and device buffers freed at the end.
class rank_gpu {
 public:
  explicit rank_gpu(int gpu) : gpu_(gpu) {
    CUDA_OK(cudaSetDevice(gpu));
    CUDA_OK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  rank_gpu(const rank_gpu&) = delete;
  rank_gpu& operator=(const rank_gpu&) = delete;
  ~rank_gpu() {
    for (void* buffer : buffers_) cudaFree(buffer);
    cudaStreamDestroy(stream_);
  }

  cudaStream_t stream() const { return stream_; }

  template <class T>
  T* alloc(std::size_t count) {
    CUDA_OK(cudaSetDevice(gpu_));
    void* memory = nullptr;
    CUDA_OK(cudaMalloc(&memory, count * sizeof(T)));
    buffers_.push_back(memory);
    return static_cast<T*>(memory);
  }

  template <class T>
  T* upload(const std::vector<T>& values) {
    T* device = alloc<T>(values.size());
    write(device, values);
    return device;
  }

  template <class T>
  static void write(T* device, const std::vector<T>& values) {
    CUDA_OK(cudaMemcpy(device, values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice));
  }

  template <class T>
  static std::vector<T> read(const T* device, std::size_t count) {
    std::vector<T> host(count);
    CUDA_OK(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  int gpu_;
  cudaStream_t stream_ = nullptr;
  std::vector<void*> buffers_;
};

// body(rank) on a thread of its own for ranks 0 and 1; their results, or the first one's failure.
template <class Body>
auto on_two_ranks(Body body) {
  using result = decltype(body(0));
  std::vector<std::future<result>> ranks;
  for (int rank = 0; rank < 2; ++rank) ranks.push_back(std::async(std::launch::async, body, rank));
  std::vector<result> results;
  for (auto& rank : ranks) results.push_back(rank.get());
  return results;
}

// What `call` throws; empty when it returns.
template <class Call>
std::string thrown_by(Call call) {
  try {
    call();
  } catch (const std::exception& error) {
    return error.what();
  }
  return "";
}

// Two ranks on GPUs 0 and 1 made at once (ncclCommInitAll), destroyed at the end.
struct two_comms {
  ncclComm_t comms[2] = {nullptr, nullptr};
  two_comms() { NCCL_OK(ncclCommInitAll(comms, 2, nullptr)); }
  two_comms(const two_comms&) = delete;
  two_comms& operator=(const two_comms&) = delete;
  ~two_comms() {
    for (ncclComm_t comm : comms) ncclCommDestroy(comm);  // refused (and kept) for an aborted handle
  }
  ncclComm_t operator[](int rank) const { return comms[rank]; }
};

inline ncclConfig_t config_of(int blocking) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = blocking;
  return config;
}

inline ncclUniqueId new_id() {
  ncclUniqueId id;
  NCCL_OK(ncclGetUniqueId(&id));
  return id;
}

}  // namespace glm4::test::emulated_nccl
