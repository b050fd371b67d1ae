#include "tests/kernels/cuda/gpu_test_support.hpp"

#include <catch2/catch.hpp>

#include "kernels/cuda/device_query.hpp"

namespace glm4::test {

bool have_gpu_or_skip() {
  static const auto inventory = kernels::cuda::query_gpus();
  if (!inventory.gpus.empty()) return true;
  WARN("GPU test skipped: " << inventory.reason_none);
  return false;
}

}  // namespace glm4::test
