// embedding, gather_rows, swiglu and add_inplace against double references.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "tests/kernels/op_test_support.hpp"

namespace glm4::test {
namespace {

using kernels::dtype;

// GGML_OP_GET_ROWS on a weight table
struct test_embedding : op_case {
  std::int64_t vocab, hidden, num_tokens;
  dtype table_type;

  test_embedding(std::int64_t vocab_, std::int64_t hidden_, std::int64_t num_tokens_, dtype table_type_)
      : vocab(vocab_), hidden(hidden_), num_tokens(num_tokens_), table_type(table_type_) {}
  std::string op_name() const override { return "embedding"; }
  std::string vars() const override {
    return "V=" + std::to_string(vocab) + ",H=" + std::to_string(hidden) + ",T=" + std::to_string(num_tokens) +
           ",table=" + std::string(kernels::dtype_name(table_type));
  }
  std::string eval(kernels::backend& backend) override {
    std::mt19937 rng(static_cast<unsigned>(vocab + hidden + num_tokens));
    const host_tensor table = random_tensor(rng, table_type, {vocab, hidden});
    std::vector<std::int32_t> ids(static_cast<std::size_t>(num_tokens));
    std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(vocab - 1));
    for (auto& id : ids) id = pick(rng);
    ids.front() = static_cast<std::int32_t>(vocab - 1);
    std::vector<double> want;
    for (auto id : ids)
      for (std::int64_t i = 0; i < hidden; ++i) want.push_back(table.values[static_cast<std::size_t>(id * hidden + i)]);
    kernels::tensor dtable = upload(backend, table), dids = upload(backend, int_tensor({num_tokens}, ids));
    kernels::tensor out = backend.alloc(dtype::f32, {num_tokens, hidden});
    backend.embedding(out, dtable, dids);
    return compare(download(backend, out), want, {0.0, 0.0, 0.0});
  }
};

// GGML_OP_GET_ROWS on activations
struct test_gather_rows : op_case {
  std::int64_t num_tokens, hidden;
  std::vector<std::int32_t> rows;

  test_gather_rows(std::int64_t num_tokens_, std::int64_t hidden_, std::vector<std::int32_t> rows_)
      : num_tokens(num_tokens_), hidden(hidden_), rows(std::move(rows_)) {}
  std::string op_name() const override { return "gather_rows"; }
  std::string vars() const override {
    return "T=" + std::to_string(num_tokens) + ",H=" + std::to_string(hidden) + ",R=" + std::to_string(rows.size());
  }
  std::string eval(kernels::backend& backend) override {
    std::mt19937 rng(11);
    const host_tensor x = random_tensor(rng, dtype::f32, {num_tokens, hidden});
    std::vector<double> want;
    for (auto row : rows)
      for (std::int64_t i = 0; i < hidden; ++i) want.push_back(x.values[static_cast<std::size_t>(row * hidden + i)]);
    const auto num_rows = static_cast<std::int64_t>(rows.size());
    kernels::tensor dx = upload(backend, x), drows = upload(backend, int_tensor({num_rows}, rows));
    kernels::tensor out = backend.alloc(dtype::f32, {num_rows, hidden});
    backend.gather_rows(out, dx, drows);
    return compare(download(backend, out), want, {0.0, 0.0, 0.0});
  }
};

// GGML_GLU_OP_SWIGLU
struct test_swiglu : op_case {
  std::int64_t num_tokens, ffn;

  test_swiglu(std::int64_t num_tokens_, std::int64_t ffn_) : num_tokens(num_tokens_), ffn(ffn_) {}
  std::string op_name() const override { return "swiglu"; }
  std::string vars() const override { return "T=" + std::to_string(num_tokens) + ",F=" + std::to_string(ffn); }
  std::string eval(kernels::backend& backend) override {
    std::mt19937 rng(static_cast<unsigned>(num_tokens * 3 + ffn));
    host_tensor gate_up = random_tensor(rng, dtype::f32, {num_tokens, 2 * ffn}, -12.0, 12.0);
    // Extreme gates: silu saturates to 0 and to the identity without NaN.
    gate_up.view.as<float>()[0] = -200.0f;
    gate_up.values[0] = -200.0;
    if (ffn > 1) {
      gate_up.view.as<float>()[1] = 200.0f;
      gate_up.values[1] = 200.0;
    }
    std::vector<double> want;
    for (std::int64_t t = 0; t < num_tokens; ++t)
      for (std::int64_t i = 0; i < ffn; ++i) {
        const double g = gate_up.values[static_cast<std::size_t>(t * 2 * ffn + i)];
        const double u = gate_up.values[static_cast<std::size_t>(t * 2 * ffn + ffn + i)];
        want.push_back(g / (1.0 + std::exp(-g)) * u);
      }
    kernels::tensor dgate_up = upload(backend, gate_up);
    kernels::tensor out = backend.alloc(dtype::f32, {num_tokens, ffn});
    backend.swiglu(out, dgate_up);
    return compare(download(backend, out), want, {1e-12, 1e-6, 1e-6});
  }
};

// GGML_OP_ADD
struct test_add : op_case {
  std::int64_t num_tokens, hidden;

  test_add(std::int64_t num_tokens_, std::int64_t hidden_) : num_tokens(num_tokens_), hidden(hidden_) {}
  std::string op_name() const override { return "add_inplace"; }
  std::string vars() const override { return "T=" + std::to_string(num_tokens) + ",H=" + std::to_string(hidden); }
  std::string eval(kernels::backend& backend) override {
    std::mt19937 rng(static_cast<unsigned>(num_tokens + hidden * 5));
    const host_tensor x = random_tensor(rng, dtype::f32, {num_tokens, hidden});
    const host_tensor y = random_tensor(rng, dtype::f32, {num_tokens, hidden});
    std::vector<double> want(x.values.size());
    for (std::size_t i = 0; i < want.size(); ++i) want[i] = static_cast<float>(x.values[i] + y.values[i]);
    kernels::tensor dx = upload(backend, x), dy = upload(backend, y);
    backend.add_inplace(dx, dy);
    return compare(download(backend, dx), want, {0.0, 0.0, 0.0});
  }
};

}  // namespace

TEST_CASE("embedding gathers widened table rows", "[kernels][embedding]") {
  std::vector<std::unique_ptr<op_case>> cases;
  for (dtype table_type : {dtype::f32, dtype::f16, dtype::bf16})
    for (std::int64_t num_tokens : {1, 5, 300})
      for (std::int64_t hidden : {1, 9, 256}) cases.push_back(std::make_unique<test_embedding>(50, hidden, num_tokens, table_type));
  for (auto& backend : backends_under_test()) run_cases(*backend, cases);
}

TEST_CASE("gather_rows picks rows in the order asked, repeats included", "[kernels][gather_rows]") {
  std::vector<std::unique_ptr<op_case>> cases;
  cases.push_back(std::make_unique<test_gather_rows>(1, 16, std::vector<std::int32_t>{0}));
  cases.push_back(std::make_unique<test_gather_rows>(9, 33, std::vector<std::int32_t>{8, 2, 2, 0}));
  cases.push_back(std::make_unique<test_gather_rows>(64, 512, std::vector<std::int32_t>{63, 10, 31}));
  cases.push_back(std::make_unique<test_gather_rows>(4, 8, std::vector<std::int32_t>{}));
  for (auto& backend : backends_under_test()) run_cases(*backend, cases);
}

TEST_CASE("swiglu is silu(gate) * up with gate rows first", "[kernels][swiglu]") {
  std::vector<std::unique_ptr<op_case>> cases;
  for (std::int64_t num_tokens : {1, 3, 40})
    for (std::int64_t ffn : {1, 8, 13, 1000}) cases.push_back(std::make_unique<test_swiglu>(num_tokens, ffn));
  for (auto& backend : backends_under_test()) run_cases(*backend, cases);
}

TEST_CASE("add_inplace adds element-wise", "[kernels][add_inplace]") {
  std::vector<std::unique_ptr<op_case>> cases;
  for (std::int64_t num_tokens : {1, 7, 100})
    for (std::int64_t hidden : {1, 15, 4096}) cases.push_back(std::make_unique<test_add>(num_tokens, hidden));
  for (auto& backend : backends_under_test()) run_cases(*backend, cases);
}

TEST_CASE("index ops reject indices outside their table", "[kernels][embedding][gather_rows]") {
  auto backend = kernels::make_cpu_backend(1);
  std::mt19937 rng(2);
  const host_tensor table = random_tensor(rng, dtype::bf16, {10, 4});
  kernels::tensor out = backend->alloc(dtype::f32, {2, 4});
  CHECK_THROWS_AS(backend->embedding(out, table.view, int_tensor({2}, {3, 10}).view), std::out_of_range);
  CHECK_THROWS_AS(backend->embedding(out, table.view, int_tensor({2}, {-1, 0}).view), std::out_of_range);
  const host_tensor x = random_tensor(rng, dtype::f32, {3, 4});
  CHECK_THROWS_AS(backend->gather_rows(out, x.view, int_tensor({2}, {0, 3}).view), std::out_of_range);
  kernels::tensor odd = backend->alloc(dtype::f32, {2, 3});
  CHECK_THROWS_AS(backend->swiglu(odd, x.view), std::invalid_argument);
}

}  // namespace glm4::test
