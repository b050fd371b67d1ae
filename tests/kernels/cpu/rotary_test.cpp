// rotary: interleaved pairs on the first rotary_dim dims of each head, the rest passing through.
#include <catch2/catch.hpp>

#include <cmath>

#include "tests/kernels/op_test_support.hpp"

namespace glm4::test {
namespace {

using kernels::dtype;

// GGML_OP_ROPE (GPT-J style pairs, partial)
struct test_rotary : op_case {
  std::int64_t num_tokens, num_heads, head_dim, rotary_dim;
  float theta;
  std::int32_t first_position;

  test_rotary(std::int64_t num_tokens_, std::int64_t num_heads_, std::int64_t head_dim_, std::int64_t rotary_dim_,
              float theta_, std::int32_t first_position_)
      : num_tokens(num_tokens_), num_heads(num_heads_), head_dim(head_dim_), rotary_dim(rotary_dim_), theta(theta_),
        first_position(first_position_) {}
  std::string op_name() const override { return "rotary"; }
  std::string vars() const override {
    return "T=" + std::to_string(num_tokens) + ",heads=" + std::to_string(num_heads) + ",D=" + std::to_string(head_dim) +
           ",rotary_dim=" + std::to_string(rotary_dim) + ",theta=" + std::to_string(theta) +
           ",pos0=" + std::to_string(first_position);
  }
  std::string eval(kernels::backend& backend) override {
    std::mt19937 rng(static_cast<unsigned>(num_tokens * 3 + head_dim));
    const host_tensor x = random_tensor(rng, dtype::f32, {num_tokens, num_heads, head_dim}, -2.0, 2.0);
    // Positions run backwards and skip, as rows of a mixed batch may.
    std::vector<std::int32_t> positions(static_cast<std::size_t>(num_tokens));
    for (std::int64_t t = 0; t < num_tokens; ++t)
      positions[static_cast<std::size_t>(t)] = first_position + static_cast<std::int32_t>((num_tokens - 1 - t) * 3);

    std::vector<double> want(x.values);
    for (std::int64_t t = 0; t < num_tokens; ++t)
      for (std::int64_t i = 0; i < rotary_dim / 2; ++i) {
        // transformers computes inv_freq and position * inv_freq in F32; mirror those roundings.
        const float inv_freq = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rotary_dim));
        const double angle = static_cast<float>(positions[static_cast<std::size_t>(t)]) * inv_freq;
        for (std::int64_t h = 0; h < num_heads; ++h) {
          const std::size_t base = static_cast<std::size_t>((t * num_heads + h) * head_dim + 2 * i);
          const double x0 = x.values[base], x1 = x.values[base + 1];
          want[base] = x0 * std::cos(angle) - x1 * std::sin(angle);
          want[base + 1] = x1 * std::cos(angle) + x0 * std::sin(angle);
        }
      }
    kernels::tensor dx = upload(backend, x);
    kernels::tensor dpos = upload(backend, int_tensor({num_tokens}, positions));
    backend.rotary(dx, dpos, rotary_dim, theta);
    return compare(download(backend, dx), want, {1e-12, 2e-6, 1e-6});
  }
};

}  // namespace

TEST_CASE("rotary rotates interleaved pairs of the leading dims", "[kernels][rotary]") {
  std::vector<std::unique_ptr<op_case>> cases;
  for (std::int64_t num_tokens : {1, 4, 37})
    for (std::int32_t first_position : {0, 5, 4000}) {
      cases.push_back(std::make_unique<test_rotary>(num_tokens, 4, 128, 64, 10000.0f, first_position));
      cases.push_back(std::make_unique<test_rotary>(num_tokens, 2, 16, 8, 500000.0f, first_position));
      cases.push_back(std::make_unique<test_rotary>(num_tokens, 3, 10, 10, 10000.0f, first_position));
      cases.push_back(std::make_unique<test_rotary>(num_tokens, 1, 12, 2, 100.0f, first_position));
    }
  for (auto& backend : backends_under_test()) run_cases(*backend, cases);
}

TEST_CASE("rotary at position 0 is the identity", "[kernels][rotary]") {
  auto backend = kernels::make_cpu_backend(1);
  std::mt19937 rng(4);
  const host_tensor x = random_tensor(rng, dtype::f32, {2, 2, 8});
  kernels::tensor dx = upload(*backend, x);
  backend->rotary(dx, int_tensor({2}, {0, 0}).view, 8, 10000.0f);
  const std::vector<float> got = download(*backend, dx);
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == static_cast<float>(x.values[i]));
}

TEST_CASE("rotary rejects odd or oversized rotary_dim", "[kernels][rotary]") {
  auto backend = kernels::make_cpu_backend(1);
  std::mt19937 rng(4);
  host_tensor x = random_tensor(rng, dtype::f32, {1, 2, 8});
  const host_tensor positions = int_tensor({1}, {3});
  CHECK_THROWS_AS(backend->rotary(x.view, positions.view, 3, 10000.0f), std::invalid_argument);
  CHECK_THROWS_AS(backend->rotary(x.view, positions.view, 10, 10000.0f), std::invalid_argument);
  CHECK_THROWS_AS(backend->rotary(x.view, int_tensor({2}, {0, 1}).view, 8, 10000.0f), std::invalid_argument);
}

}  // namespace glm4::test
