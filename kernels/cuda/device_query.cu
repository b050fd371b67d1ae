#include "kernels/cuda/device_query.hpp"

#include <cuda_runtime.h>
#if GLM4_HAVE_NCCL
#include <nccl.h>
#endif

namespace glm4::kernels::cuda {
namespace {

std::string error_text(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
}

// Loaded only to ask the driver which image of this binary it would run.
__global__ void probe_kernel() {}

}  // namespace

gpu_inventory query_gpus() {
  gpu_inventory inventory;
  cudaRuntimeGetVersion(&inventory.runtime_version);
  cudaDriverGetVersion(&inventory.driver_version);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    inventory.reason_none = error_text(status);
    cudaGetLastError();  // clear the sticky error so later calls are not poisoned
    return inventory;
  }
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp props{};
    if (cudaGetDeviceProperties(&props, index) != cudaSuccess) continue;
    gpu_info info;
    info.index = index;
    info.name = props.name;
    info.compute_major = props.major;
    info.compute_minor = props.minor;
    info.total_memory_bytes = props.totalGlobalMem;
    info.has_bf16 = props.major >= 8;
    inventory.gpus.push_back(std::move(info));
  }
  if (inventory.gpus.empty()) inventory.reason_none = "no CUDA-capable device";
  return inventory;
}

namespace {

// Makes `device` current for a scope and then restores the caller's: queries must not move the
// thread off the GPU its backend works on.
class device_scope {
 public:
  explicit device_scope(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    status_ = cudaSetDevice(device);
  }
  device_scope(const device_scope&) = delete;
  device_scope& operator=(const device_scope&) = delete;
  ~device_scope() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  cudaError_t status() const { return status_; }

 private:
  int previous_ = -1;
  cudaError_t status_ = cudaSuccess;
};

}  // namespace

memory_info query_memory(int device) {
  memory_info info;
  const device_scope scope(device);
  if (scope.status() != cudaSuccess || cudaMemGetInfo(&info.free_bytes, &info.total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return {};
  }
  return info;
}

bool can_access_peer(int device, int peer) {
  int access = 0;
  if (cudaDeviceCanAccessPeer(&access, device, peer) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return access != 0;
}

kernel_image probe_kernel_image(int device) {
  kernel_image image;
  const device_scope scope(device);
  cudaError_t status = scope.status();
  cudaFuncAttributes attributes{};
  if (status == cudaSuccess) status = cudaFuncGetAttributes(&attributes, probe_kernel);
  if (status != cudaSuccess) {
    image.error = error_text(status);
    cudaGetLastError();
    return image;
  }
  image.loads = true;
  image.binary_version = attributes.binaryVersion;
  image.ptx_version = attributes.ptxVersion;
  return image;
}

std::string compiled_architectures() { return GLM4_CUDA_ARCHITECTURES; }

int toolkit_major_version() { return __CUDACC_VER_MAJOR__; }

std::optional<std::string> nccl_version() {
#if GLM4_HAVE_NCCL
  int code = 0;
  if (ncclGetVersion(&code) != ncclSuccess) return std::nullopt;
  // Since NCCL 2.9 the code is major * 10000 + minor * 100 + patch.
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." + std::to_string(code % 100);
#else
  return std::nullopt;
#endif
}

}  // namespace glm4::kernels::cuda
