#include "tests/kernels/cuda/parity_support.hpp"

#include <catch2/catch.hpp>

#include <cmath>

#include "kernels/cuda/cuda_backend.hpp"

namespace glm4::test {

std::unique_ptr<kernels::backend> cuda_backend_under_test() { return kernels::make_cuda_backend(0); }

std::string type_text(kernels::dtype type) { return std::string(kernels::dtype_name(type)); }

void check_parity(const std::vector<parity_case>& cases) {
  const auto gpu = cuda_backend_under_test();
  const auto cpu = kernels::make_cpu_backend(2);
  std::size_t num_failed = 0;
  for (const auto& c : cases) {
    const std::vector<float> want = c.run(*cpu);
    const std::vector<float> got = c.run(*gpu);
    std::vector<double> reference(want.begin(), want.end());
    std::string error;
    for (std::size_t i = 0; i < want.size() && error.empty(); ++i)
      if (!std::isfinite(want[i])) error = "the CPU reference is not finite at " + std::to_string(i);
    if (error.empty()) error = compare(got, reference, c.tol);
    if (!error.empty()) {
      ++num_failed;
      UNSCOPED_INFO(c.op << "(" << c.vars << "): " << error);
    }
  }
  INFO(num_failed << " of " << cases.size() << " cases failed");
  CHECK(num_failed == 0);
}

}  // namespace glm4::test
