// How much of a GPU the KV pool may take, one rule for serve (after the weights are loaded) and
// doctor --config (before): total memory x gpu_memory_utilization, less what is in use, less the
// weights still to load, less a reserve for activations and cuBLAS workspaces.
#pragma once

#include <cstdint>
#include <optional>

namespace glm4::cli {

struct gpu_kv_budget {
  std::uint64_t total_bytes = 0;
  std::uint64_t in_use_bytes = 0;
  std::optional<std::uint64_t> kv_bytes;  // none: nothing is left for the KV cache
};

/// Queries GPU `index`; `weights_to_load` is 0 once they are on the device. Throws
/// std::runtime_error in a build without CUDA.
gpu_kv_budget plan_gpu_kv_budget(int index, double utilization, std::uint64_t weights_to_load);

}  // namespace glm4::cli
