// test-backend-ops style parity: each case runs one op on the CUDA backend and on the CPU backend
// from the same host inputs; outputs must agree within the case's tolerance and be finite.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "tests/kernels/op_test_support.hpp"

namespace glm4::test {

struct parity_case {
  std::string op;
  std::string vars;  // printed on failure: shapes, dtypes, parameters
  tolerance tol;
  /// Uploads the case's inputs to `backend`, runs the op and returns the output on the host.
  std::function<std::vector<float>(kernels::backend& backend)> run;
};

/// The CUDA backend on device 0 (call only after have_gpu_or_skip()).
std::unique_ptr<kernels::backend> cuda_backend_under_test();

/// Runs every case on both backends; each failure is reported with its op, vars and what differed.
void check_parity(const std::vector<parity_case>& cases);

/// "F32", "F16", "BF16".
std::string type_text(kernels::dtype type);

}  // namespace glm4::test
