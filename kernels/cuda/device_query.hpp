// What the CUDA runtime says about the GPUs of this machine; safe to call where there is no GPU or driver.
#pragma once

#include <cstddef>
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

}  // namespace glm4::kernels::cuda
