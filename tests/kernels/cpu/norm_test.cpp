// rms_norm against a double reference: row counts, widths around the vector width, weight dtypes,
// in-place use (out aliasing x) and rows of zeros.
#include <catch2/catch.hpp>

#include <cmath>

#include "tests/kernels/op_test_support.hpp"

namespace glm4::test {
namespace {

using kernels::dtype;

// GGML_OP_RMS_NORM
struct test_rms_norm : op_case {
  std::int64_t num_rows, hidden;
  dtype weight_type;
  float eps;
  bool in_place;

  test_rms_norm(std::int64_t num_rows_, std::int64_t hidden_, dtype weight_type_, float eps_, bool in_place_)
      : num_rows(num_rows_), hidden(hidden_), weight_type(weight_type_), eps(eps_), in_place(in_place_) {}

  std::string op_name() const override { return "rms_norm"; }
  std::string vars() const override {
    return "T=" + std::to_string(num_rows) + ",H=" + std::to_string(hidden) + ",w=" +
           std::string(kernels::dtype_name(weight_type)) + ",eps=" + std::to_string(eps) +
           ",in_place=" + std::to_string(in_place);
  }
  std::string eval(kernels::backend& backend) override {
    std::mt19937 rng(static_cast<unsigned>(num_rows * 31 + hidden));
    host_tensor x = random_tensor(rng, dtype::f32, {num_rows, hidden}, -4.0, 4.0);
    // The last row is all zeros: the result must be 0, not NaN.
    for (std::int64_t i = 0; i < hidden; ++i) {
      x.values[static_cast<std::size_t>((num_rows - 1) * hidden + i)] = 0.0;
      x.view.as<float>()[(num_rows - 1) * hidden + i] = 0.0f;
    }
    const host_tensor weight = random_tensor(rng, weight_type, {hidden}, 0.5, 1.5);
    std::vector<double> want(x.values.size());
    for (std::int64_t t = 0; t < num_rows; ++t) {
      double sum = 0.0;
      for (std::int64_t i = 0; i < hidden; ++i) sum += x.values[static_cast<std::size_t>(t * hidden + i)] * x.values[static_cast<std::size_t>(t * hidden + i)];
      const double inv = 1.0 / std::sqrt(sum / static_cast<double>(hidden) + eps);
      for (std::int64_t i = 0; i < hidden; ++i)
        want[static_cast<std::size_t>(t * hidden + i)] = x.values[static_cast<std::size_t>(t * hidden + i)] * inv * weight.values[static_cast<std::size_t>(i)];
    }
    kernels::tensor dx = upload(backend, x), dw = upload(backend, weight);
    kernels::tensor out = in_place ? dx : backend.alloc(dtype::f32, {num_rows, hidden});
    backend.rms_norm(out, dx, dw, eps);
    return compare(download(backend, out), want, {1e-12, 1e-5, 1e-5});
  }
};

}  // namespace

TEST_CASE("rms_norm matches the double reference", "[kernels][rms_norm]") {
  std::vector<std::unique_ptr<op_case>> cases;
  for (dtype weight_type : {dtype::f32, dtype::f16, dtype::bf16})
    for (std::int64_t num_rows : {1, 2, 5, 64})
      for (std::int64_t hidden : {1, 7, 8, 33, 256, 4100})
        for (bool in_place : {false, true})
          cases.push_back(std::make_unique<test_rms_norm>(num_rows, hidden, weight_type, 1.5625e-7f, in_place));
  cases.push_back(std::make_unique<test_rms_norm>(3, 64, dtype::bf16, 1e-2f, false));
  for (auto& backend : backends_under_test()) run_cases(*backend, cases);
}

TEST_CASE("rms_norm rejects a weight of the wrong width", "[kernels][rms_norm]") {
  auto backend = kernels::make_cpu_backend(1);
  std::mt19937 rng(1);
  const host_tensor x = random_tensor(rng, dtype::f32, {2, 8});
  const host_tensor weight = random_tensor(rng, dtype::f32, {7});
  kernels::tensor out = backend->alloc(dtype::f32, {2, 8});
  CHECK_THROWS_AS(backend->rms_norm(out, x.view, weight.view, 1e-6f), std::invalid_argument);
}

}  // namespace glm4::test
