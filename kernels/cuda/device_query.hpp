// What the CUDA runtime says about the GPUs of this machine; safe to call where there is no GPU or driver.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace glm4::kernels::cuda {

struct gpu_info {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  std::size_t total_memory_bytes = 0;
  bool has_bf16 = false;  // native BF16 arithmetic needs sm_80 or newer
};

struct gpu_inventory {
  std::vector<gpu_info> gpus;
  /// Why there are no GPUs ("no CUDA driver", "no CUDA-capable device"); empty when gpus is not empty.
  std::string reason_none;
  int runtime_version = 0;  // 13000 for CUDA 13.0
  int driver_version = 0;   // 0 when no driver is loaded
};

gpu_inventory query_gpus();

/// Free and total bytes of `device` as the driver sees them now (creates its context).
struct memory_info {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
};
memory_info query_memory(int device);

/// Whether `device` can map `peer`'s memory directly (P2P over NVLink or PCIe).
bool can_access_peer(int device, int peer);

/// What the driver picked when loading this binary's kernels on `device`: binary_version is the
/// SASS arch (75 for sm_75) or 0, ptx_version the PTX arch JIT-compiled from, error the reason
/// nothing could be loaded ("cudaErrorNoKernelImageForDevice ...").
struct kernel_image {
  bool loads = false;
  int binary_version = 0;
  int ptx_version = 0;
  std::string error;
};
kernel_image probe_kernel_image(int device);

/// CMAKE_CUDA_ARCHITECTURES this library was compiled for, comma separated ("75-real,80-real,90").
std::string compiled_architectures();

/// Major version of the toolkit that compiled this library (13 for CUDA 13.x).
int toolkit_major_version();

/// "2.27.3" when NCCL is linked (ncclGetVersion needs no GPU); nullopt otherwise.
std::optional<std::string> nccl_version();

}  // namespace glm4::kernels::cuda
