#include "tools/cli/gpu_kv_budget.hpp"

#include <stdexcept>

#ifdef GLM4_HAVE_CUDA
#include "kernels/cuda/device_query.hpp"
#endif

namespace glm4::cli {

gpu_kv_budget plan_gpu_kv_budget(int index, double utilization, std::uint64_t weights_to_load) {
#ifdef GLM4_HAVE_CUDA
  constexpr double reserve_bytes = 1024.0 * 1024.0 * 1024.0;
  const auto memory = kernels::cuda::query_memory(index);
  gpu_kv_budget budget;
  budget.total_bytes = memory.total_bytes;
  budget.in_use_bytes = memory.total_bytes - memory.free_bytes;
  const double left = utilization * static_cast<double>(memory.total_bytes) - static_cast<double>(budget.in_use_bytes) -
                      static_cast<double>(weights_to_load) - reserve_bytes;
  if (left > 0) budget.kv_bytes = static_cast<std::uint64_t>(left);
  return budget;
#else
  (void)index;
  (void)utilization;
  (void)weights_to_load;
  throw std::runtime_error("this glm4-actor was built without CUDA");
#endif
}

}  // namespace glm4::cli
