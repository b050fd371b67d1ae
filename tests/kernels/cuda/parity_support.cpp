#include "tests/kernels/cuda/parity_support.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_backend.hpp"

namespace glm4::test {

std::unique_ptr<kernels::backend> cuda_backend_under_test() { return kernels::make_cuda_backend(0); }

std::string type_text(kernels::dtype type) { return std::string(kernels::dtype_name(type)); }

namespace {

// GLM4_PARITY_CASE_STRIDE=N runs cases 0, N, 2N, ... of each op only: for the racecheck tests, whose
// ThreadSanitizer makes each case several times slower. Races are a matter of a kernel's code paths, which a
// stride coprime with the tests' loop lengths still reaches through all of their values.
std::size_t case_stride() {
  const char* text = std::getenv("GLM4_PARITY_CASE_STRIDE");
  if (text == nullptr || *text == '\0') return 1;
  char* end = nullptr;
  const unsigned long value = std::strtoul(text, &end, 10);
  if (*end != '\0' || value == 0 || *text == '-')
    throw std::invalid_argument(std::string("GLM4_PARITY_CASE_STRIDE is '") + text + "': give a positive whole number");
  return value;
}

}  // namespace

void check_parity(const std::vector<parity_case>& cases) {
  const auto gpu = cuda_backend_under_test();
  const auto cpu = kernels::make_cpu_backend(2);
  const std::size_t stride = case_stride();
  std::map<std::string, std::size_t> cases_of_op;
  std::size_t num_failed = 0, num_run = 0;
  for (const parity_case& c : cases) {
    if (cases_of_op[c.op]++ % stride != 0) continue;
    ++num_run;
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
  INFO(num_failed << " of " << num_run << " cases run (of " << cases.size() << ") failed");
  CHECK(num_failed == 0);
}

}  // namespace glm4::test
