#include "kernels/cuda/device_query.hpp"

#include <cuda_runtime.h>

namespace glm4::kernels::cuda {

gpu_inventory query_gpus() {
  gpu_inventory inventory;
  cudaRuntimeGetVersion(&inventory.runtime_version);
  cudaDriverGetVersion(&inventory.driver_version);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    inventory.reason_none = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
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

}  // namespace glm4::kernels::cuda
