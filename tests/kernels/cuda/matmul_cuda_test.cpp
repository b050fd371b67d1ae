// CUDA matmul (cuBLAS, FP32 accumulation) vs the CPU backend over shapes, weight and bias types.
// F16/BF16 weights multiply activations narrowed to the weight type, so those cases allow the
// rounding of one operand: error ~ sqrt(K) * 2^-mantissa per output. The matvec kernel keeps the
// activations in F32 as the CPU backend does, so its cases are held to F32's bound.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "kernels/cuda/cuda_backend.hpp"
#include "tests/kernels/cuda/gpu_test_support.hpp"
#include "tests/kernels/cuda/parity_support.hpp"

namespace glm4::test {
namespace {

using kernels::dtype;

tolerance matmul_tolerance(dtype weight_type, std::int64_t k) {
  const double root_k = std::sqrt(static_cast<double>(k));
  switch (weight_type) {
    case dtype::bf16: return {1e-4, 8e-3 * root_k, 1e-2};
    case dtype::f16: return {1e-6, 1e-3 * root_k, 2e-3};
    default: return {1e-10, 2e-5 * root_k, 1e-4};
  }
}

}  // namespace

TEST_CASE("cuda matmul matches the CPU backend", "[cuda][matmul]") {
  if (!have_gpu_or_skip()) return;
  const auto kernel = GENERATE(kernels::cuda::matmul_kernel::cublas, kernels::cuda::matmul_kernel::matvec);
  const std::string kernel_name = kernel == kernels::cuda::matmul_kernel::matvec ? "matvec" : "cublas";
  std::mt19937 rng(11);
  std::vector<parity_case> cases;
  struct shape {
    std::int64_t n, k;
  };
  for (dtype w_type : {dtype::f32, dtype::f16, dtype::bf16})
    for (shape s : {shape{64, 64}, shape{96, 4096}, shape{1000, 257}, shape{4608, 256}, shape{13, 20}})
      for (std::int64_t num_tokens : {1, 5, 8, 9, 64})
        for (int bias_kind = 0; bias_kind < 3; ++bias_kind) {
          auto x = random_tensor(rng, dtype::f32, {num_tokens, s.k});
          auto w = random_tensor(rng, w_type, {s.n, s.k});
          const dtype bias_type = bias_kind == 2 ? dtype::bf16 : dtype::f32;
          auto bias = random_tensor(rng, bias_type, {s.n}, -3.0, 3.0);
          const bool with_bias = bias_kind != 0;
          const bool by_matvec = kernels::cuda::uses_matvec(kernel, num_tokens, w_type);
          cases.push_back({"matmul",
                           kernel_name + (by_matvec ? " (used)" : " (cuBLAS here)") + ",x=" + shape_text(x.shape()) +
                               ",w=" + type_text(w_type) + shape_text(w.shape()) +
                               ",bias=" + (with_bias ? type_text(bias_type) : "none"),
                           matmul_tolerance(by_matvec ? dtype::f32 : w_type, s.k), [=](kernels::backend& b) {
                             if (auto* gpu = dynamic_cast<kernels::cuda::cuda_backend*>(&b)) gpu->set_matmul_kernel(kernel);
                             auto out = b.alloc(dtype::f32, {num_tokens, s.n});
                             const auto d_bias = upload(b, bias);
                             b.matmul(out, upload(b, x), upload(b, w), with_bias ? &d_bias : nullptr);
                             return download(b, out);
                           }});
        }
  check_parity(cases);
}

TEST_CASE("cuda matmul with an empty batch, then a shrinking one that reuses the scratch", "[cuda][matmul]") {
  if (!have_gpu_or_skip()) return;
  auto b = cuda_backend_under_test();
  auto cpu = kernels::make_cpu_backend(1);
  std::mt19937 rng(5);
  const auto w = random_tensor(rng, dtype::bf16, {32, 48});
  const auto d_w = upload(*b, w), c_w = upload(*cpu, w);
  auto empty_out = b->alloc(dtype::f32, {0, 32});
  b->matmul(empty_out, b->alloc(dtype::f32, {0, 48}), d_w, nullptr);
  for (std::int64_t num_tokens : {40, 3}) {
    CAPTURE(num_tokens);
    const auto x = random_tensor(rng, dtype::f32, {num_tokens, 48});
    auto out = b->alloc(dtype::f32, {num_tokens, 32});
    b->matmul(out, upload(*b, x), d_w, nullptr);
    auto want = cpu->alloc(dtype::f32, {num_tokens, 32});
    cpu->matmul(want, upload(*cpu, x), c_w, nullptr);
    const auto want_values = download(*cpu, want);
    CHECK(compare(download(*b, out), std::vector<double>(want_values.begin(), want_values.end()),
                  matmul_tolerance(dtype::bf16, 48))
              .empty());
  }
}

}  // namespace glm4::test

namespace glm4::test {

// F16 tops out at 65504: activations past it (GLM-4's SwiGLU output can get there) must not turn
// into inf. Each case scales every row by one factor; the error allowed scales with it.
TEST_CASE("cuda matmul with F16 weights keeps activations beyond F16's range finite", "[cuda][matmul]") {
  if (!have_gpu_or_skip()) return;
  std::mt19937 rng(17);
  std::vector<parity_case> cases;
  constexpr std::int64_t n = 96, k = 640;
  for (double factor : {1.0, 4e4, 1e5, 3e7})
    for (std::int64_t num_tokens : {1, 7}) {
      const auto x = random_tensor(rng, dtype::f32, {num_tokens, k}, -factor, factor);
      const auto w = random_tensor(rng, dtype::f16, {n, k});
      const auto bias = random_tensor(rng, dtype::f32, {n}, -3.0, 3.0);
      tolerance tol = matmul_tolerance(dtype::f16, k);
      tol.abs *= factor;
      cases.push_back({"matmul", "x=" + shape_text(x.shape()) + " in +-" + std::to_string(factor) + ",w=f16",
                       tol, [=](kernels::backend& b) {
                         auto out = b.alloc(dtype::f32, {num_tokens, n});
                         const auto d_bias = upload(b, bias);
                         b.matmul(out, upload(b, x), upload(b, w), &d_bias);
                         return download(b, out);
                       }});
    }
  check_parity(cases);
}

}  // namespace glm4::test
