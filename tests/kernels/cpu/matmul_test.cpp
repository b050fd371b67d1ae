// matmul: out (T, N) = x (T, K) . w (N, K)^T + bias, against a double-accumulation reference, over
// token counts around the register tile, row counts around the row tile, K across the vector width
// and the K slice, every weight dtype and bias dtype.
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>

#include "tests/kernels/op_test_support.hpp"

namespace glm4::test {
namespace {

using kernels::dtype;

// GGML_OP_MUL_MAT
struct test_matmul : op_case {
  std::int64_t num_tokens, n, k;
  dtype weight_type;
  std::optional<dtype> bias_type;

  test_matmul(std::int64_t num_tokens_, std::int64_t n_, std::int64_t k_, dtype weight_type_, std::optional<dtype> bias_type_)
      : num_tokens(num_tokens_), n(n_), k(k_), weight_type(weight_type_), bias_type(bias_type_) {}

  std::string op_name() const override { return "matmul"; }
  std::string vars() const override {
    return "T=" + std::to_string(num_tokens) + ",N=" + std::to_string(n) + ",K=" + std::to_string(k) +
           ",w=" + std::string(kernels::dtype_name(weight_type)) +
           ",bias=" + (bias_type ? std::string(kernels::dtype_name(*bias_type)) : "none");
  }
  std::string eval(kernels::backend& backend) override {
    std::mt19937 rng(static_cast<unsigned>(num_tokens * 7919 + n * 131 + k));
    const host_tensor x = random_tensor(rng, dtype::f32, {num_tokens, k});
    const host_tensor w = random_tensor(rng, weight_type, {n, k});
    std::optional<host_tensor> bias;
    if (bias_type) bias = random_tensor(rng, *bias_type, {n});

    std::vector<double> want(static_cast<std::size_t>(num_tokens * n));
    for (std::int64_t t = 0; t < num_tokens; ++t)
      for (std::int64_t j = 0; j < n; ++j) {
        double sum = bias ? bias->values[static_cast<std::size_t>(j)] : 0.0;
        for (std::int64_t i = 0; i < k; ++i)
          sum += x.values[static_cast<std::size_t>(t * k + i)] * w.values[static_cast<std::size_t>(j * k + i)];
        want[static_cast<std::size_t>(t * n + j)] = sum;
      }

    kernels::tensor dx = upload(backend, x), dw = upload(backend, w);
    std::optional<kernels::tensor> dbias;
    if (bias) dbias = upload(backend, *bias);
    kernels::tensor out = backend.alloc(dtype::f32, {num_tokens, n});
    backend.matmul(out, dx, dw, dbias ? &*dbias : nullptr);
    // FP32 accumulation of K products of magnitude <= 1.
    return compare(download(backend, out), want, {1e-10, 2e-6 * static_cast<double>(k), 1e-5});
  }
};

std::vector<std::unique_ptr<op_case>> make_matmul_cases() {
  std::vector<std::unique_ptr<op_case>> cases;
  for (dtype weight_type : {dtype::f32, dtype::f16, dtype::bf16}) {
    for (std::int64_t num_tokens : {1, 2, 3, 4, 5, 6, 7, 13})
      for (std::int64_t n : {1, 3, 4, 8, 9, 17, 70})
        for (std::int64_t k : {1, 7, 8, 16, 67, 200})
          cases.push_back(std::make_unique<test_matmul>(num_tokens, n, k, weight_type, std::nullopt));
    for (dtype bias_type : {dtype::f32, dtype::bf16, dtype::f16})
      for (std::int64_t num_tokens : {1, 4, 11})
        cases.push_back(std::make_unique<test_matmul>(num_tokens, 37, 96, weight_type, bias_type));
    // K across the 4096-wide K slice, N across several row blocks per thread, T across every
    // mix of token tiles (AVX2: 3, 2, 1; AVX-512: 6, 4, 2, 1) and across the 24-token block.
    cases.push_back(std::make_unique<test_matmul>(1, 300, 2100, weight_type, dtype::f32));
    cases.push_back(std::make_unique<test_matmul>(5, 50, 4100, weight_type, dtype::f32));
    for (std::int64_t num_tokens : {8, 9, 10, 11, 12, 16, 23, 25})
      cases.push_back(std::make_unique<test_matmul>(num_tokens, 49, 160, weight_type, std::nullopt));
    cases.push_back(std::make_unique<test_matmul>(8, 257, 1030, weight_type, std::nullopt));
    cases.push_back(std::make_unique<test_matmul>(40, 129, 1024, weight_type, dtype::bf16));
    cases.push_back(std::make_unique<test_matmul>(3, 1000, 64, weight_type, std::nullopt));
  }
  return cases;
}

}  // namespace

TEST_CASE("matmul matches the double reference for every weight dtype", "[kernels][matmul]") {
  for (auto& backend : backends_under_test()) run_cases(*backend, make_matmul_cases());
}

TEST_CASE("matmul writes bias alone when K is 0 and nothing when T is 0", "[kernels][matmul]") {
  auto backend = kernels::make_cpu_backend(2);
  const host_tensor bias = float_tensor(dtype::bf16, {3}, {1.0f, -2.0f, 0.5f});
  const host_tensor x = float_tensor(dtype::f32, {2, 0}, {});
  const host_tensor w = float_tensor(dtype::f32, {3, 0}, {});
  kernels::tensor out = backend->alloc(dtype::f32, {2, 3});
  backend->matmul(out, x.view, w.view, &bias.view);
  CHECK(download(*backend, out) == std::vector<float>{1.0f, -2.0f, 0.5f, 1.0f, -2.0f, 0.5f});

  const host_tensor no_tokens = float_tensor(dtype::f32, {0, 4}, {});
  std::mt19937 rng(1);
  const host_tensor w4 = random_tensor(rng, dtype::bf16, {3, 4});
  kernels::tensor empty_out = backend->alloc(dtype::f32, {0, 3});
  CHECK_NOTHROW(backend->matmul(empty_out, no_tokens.view, w4.view, nullptr));
}

TEST_CASE("matmul rejects mismatched shapes and integer weights", "[kernels][matmul]") {
  auto backend = kernels::make_cpu_backend(1);
  std::mt19937 rng(5);
  const host_tensor x = random_tensor(rng, dtype::f32, {2, 8});
  const host_tensor w = random_tensor(rng, dtype::bf16, {4, 9});
  kernels::tensor out = backend->alloc(dtype::f32, {2, 4});
  CHECK_THROWS_AS(backend->matmul(out, x.view, w.view, nullptr), std::invalid_argument);
  const host_tensor w_ok = random_tensor(rng, dtype::bf16, {4, 8});
  kernels::tensor wrong_out = backend->alloc(dtype::f32, {2, 5});
  CHECK_THROWS_AS(backend->matmul(wrong_out, x.view, w_ok.view, nullptr), std::invalid_argument);
  const host_tensor bad_bias = random_tensor(rng, dtype::f32, {5});
  CHECK_THROWS_AS(backend->matmul(out, x.view, w_ok.view, &bad_bias.view), std::invalid_argument);
  const host_tensor ints = int_tensor({4, 8}, std::vector<std::int32_t>(32, 1));
  CHECK_THROWS_AS(backend->matmul(out, x.view, ints.view, nullptr), std::invalid_argument);
}

// Not run by default: prints GEMV bandwidth and batched throughput, e.g.
//   kernels_tests "[.bench]" -s
TEST_CASE("matmul throughput", "[.bench][matmul]") {
  auto backend = kernels::make_cpu_backend(0);
  const std::int64_t n = 4096, k = 4096;
  std::mt19937 rng(3);
  for (dtype weight_type : {dtype::bf16, dtype::f32}) {
    const host_tensor w = random_tensor(rng, weight_type, {n, k});
    for (std::int64_t num_tokens : {1, 2, 4, 8, 16, 32, 64, 256}) {
      const host_tensor x = random_tensor(rng, dtype::f32, {num_tokens, k});
      kernels::tensor out = backend->alloc(dtype::f32, {num_tokens, n});
      backend->matmul(out, x.view, w.view, nullptr);
      const int repeats = num_tokens >= 64 ? 3 : 10;
      const auto start = std::chrono::steady_clock::now();
      for (int r = 0; r < repeats; ++r) backend->matmul(out, x.view, w.view, nullptr);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / repeats;
      WARN(backend->name() << " " << kernels::dtype_name(weight_type) << " T=" << num_tokens << ": "
                           << seconds * 1e3 << " ms, " << 2.0 * num_tokens * n * k / seconds * 1e-9 << " GFLOP/s, "
                           << static_cast<double>(w.view.nbytes()) / seconds * 1e-9 << " GB/s of weights, "
                           << seconds * 1e3 / num_tokens << " ms/token");
    }
  }
}

}  // namespace glm4::test
