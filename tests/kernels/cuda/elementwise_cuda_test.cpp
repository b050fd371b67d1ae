// CUDA backend vs CPU backend: embedding, rms_norm, swiglu, add_inplace and gather_rows over shapes
// and weight types.
#include <catch2/catch.hpp>

#include <algorithm>

#include "kernels/cuda/cuda_backend.hpp"
#include "tests/kernels/cuda/gpu_test_support.hpp"
#include "tests/kernels/cuda/parity_support.hpp"

namespace glm4::test {
namespace {

using kernels::dtype;
constexpr dtype float_types[] = {dtype::f32, dtype::f16, dtype::bf16};
const tolerance exact{0.0, 0.0, 0.0};

}  // namespace

TEST_CASE("cuda embedding, gather_rows, swiglu, add_inplace and rms_norm match the CPU backend", "[cuda][ops]") {
  if (!have_gpu_or_skip()) return;
  std::mt19937 rng(7);
  std::vector<parity_case> cases;

  for (dtype type : float_types)
    for (std::int64_t hidden : {64, 4096})
      for (std::int64_t num_tokens : {1, 17}) {
        const std::int64_t vocab = 1000;
        auto table = random_tensor(rng, type, {vocab, hidden});
        std::vector<std::int32_t> id_values;
        for (std::int64_t t = 0; t < num_tokens; ++t) id_values.push_back(static_cast<std::int32_t>(rng() % vocab));
        id_values.back() = static_cast<std::int32_t>(vocab - 1);
        auto ids = int_tensor({num_tokens}, id_values);
        cases.push_back({"embedding", "table=" + type_text(type) + shape_text(table.shape()) + ",T=" + std::to_string(num_tokens),
                         exact, [=](kernels::backend& b) {
                           auto out = b.alloc(dtype::f32, {num_tokens, hidden});
                           b.embedding(out, upload(b, table), upload(b, ids));
                           return download(b, out);
                         }});
      }

  for (std::int64_t num_rows : {1, 5, 64})
    for (std::int64_t hidden : {64, 5120}) {
      const std::int64_t num_x_rows = 70;
      auto x = random_tensor(rng, dtype::f32, {num_x_rows, hidden}, -4.0, 4.0);
      std::vector<std::int32_t> row_values;
      for (std::int64_t r = 0; r < num_rows; ++r) row_values.push_back(static_cast<std::int32_t>(rng() % num_x_rows));
      auto rows = int_tensor({num_rows}, row_values);
      cases.push_back({"gather_rows", "x=" + shape_text(x.shape()) + ",R=" + std::to_string(num_rows), exact,
                       [=](kernels::backend& b) {
                         auto out = b.alloc(dtype::f32, {num_rows, hidden});
                         b.gather_rows(out, upload(b, x), upload(b, rows));
                         return download(b, out);
                       }});
    }

  for (std::int64_t num_tokens : {1, 13, 130})
    for (std::int64_t ffn : {64, 13696}) {
      auto gate_up = random_tensor(rng, dtype::f32, {num_tokens, 2 * ffn}, -8.0, 8.0);
      cases.push_back({"swiglu", "gate_up=" + shape_text(gate_up.shape()), tolerance{1e-12, 1e-6, 1e-5},
                       [=](kernels::backend& b) {
                         auto out = b.alloc(dtype::f32, {num_tokens, ffn});
                         b.swiglu(out, upload(b, gate_up));
                         return download(b, out);
                       }});
    }

  for (std::vector<std::int64_t> shape : {std::vector<std::int64_t>{1, 64}, {33, 4096}, {7, 3, 5}}) {
    auto x = random_tensor(rng, dtype::f32, shape, -100.0, 100.0);
    auto y = random_tensor(rng, dtype::f32, shape, -100.0, 100.0);
    cases.push_back({"add_inplace", "x=" + shape_text(shape), exact, [=](kernels::backend& b) {
                       auto dx = upload(b, x);
                       b.add_inplace(dx, upload(b, y));
                       return download(b, dx);
                     }});
  }

  for (dtype type : float_types)
    for (std::int64_t num_rows : {1, 7, 64})
      for (std::int64_t hidden : {64, 1000, 4096}) {
        auto x = random_tensor(rng, dtype::f32, {num_rows, hidden}, -3.0, 3.0);
        auto weight = random_tensor(rng, type, {hidden}, 0.5, 1.5);
        for (bool in_place : {false, true})
          cases.push_back({"rms_norm", "x=" + shape_text(x.shape()) + ",w=" + type_text(type) + (in_place ? ",in place" : ""),
                           tolerance{1e-12, 1e-5, 1e-5}, [=](kernels::backend& b) {
                             auto dx = upload(b, x);
                             auto out = in_place ? dx : b.alloc(dtype::f32, {num_rows, hidden});
                             b.rms_norm(out, dx, upload(b, weight), 1.5625e-07f);
                             return download(b, out);
                           }});
      }

  check_parity(cases);
}

TEST_CASE("cuda backend checks shapes on the host like the CPU backend", "[cuda][ops]") {
  if (!have_gpu_or_skip()) return;
  auto b = cuda_backend_under_test();
  auto x = b->alloc(dtype::f32, {4, 8});
  auto bad_weight = b->alloc(dtype::f32, {7});
  CHECK_THROWS_AS(b->rms_norm(x, x, bad_weight, 1e-6f), std::invalid_argument);
  auto ids = b->alloc(dtype::f32, {4});
  auto table = b->alloc(dtype::bf16, {16, 8});
  CHECK_THROWS_AS(b->embedding(x, table, ids), std::invalid_argument);
  auto odd = b->alloc(dtype::f32, {4, 7});
  CHECK_THROWS_AS(b->swiglu(x, odd), std::invalid_argument);
  CHECK(b->kind() == kernels::device_kind::cuda);
  CHECK(b->name().rfind("cuda:0 ", 0) == 0);
}

TEST_CASE("cuda to_device keeps values, converting BF16 to F16 only before sm_80", "[cuda][memory]") {
  if (!have_gpu_or_skip()) return;
  auto b = cuda_backend_under_test();
  std::mt19937 rng(3);
  for (dtype type : float_types) {
    CAPTURE(type_text(type));
    const auto host = random_tensor(rng, type, {33, 17}, -2.0, 2.0);
    const auto device = b->to_device(host.view);
    CHECK(device.shape == host.shape());
    CHECK((device.type == type || (type == dtype::bf16 && device.type == dtype::f16)));
    // Read the stored values back through an op that widens them: embedding of every row.
    std::vector<std::int32_t> all_rows(33);
    for (int i = 0; i < 33; ++i) all_rows[static_cast<std::size_t>(i)] = i;
    auto out = b->alloc(dtype::f32, {33, 17});
    b->embedding(out, device, upload(*b, int_tensor({33}, all_rows)));
    const auto got = download(*b, out);
    // BF16 values in [-2, 2] with 8 mantissa bits fit F16's 11 exactly.
    CHECK(compare(got, host.values, exact).empty());
  }
  SECTION("before sm_80 (as this GPU is told to), a BF16 weight past F16's range is kept in F32, never inf") {
    dynamic_cast<kernels::cuda::cuda_backend&>(*b).store_bf16_as_f16();
    std::vector<float> values(32);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) / 8.0f - 2.0f;
    const auto in_range = float_tensor(dtype::bf16, {4, 8}, values);
    values[5] = 1.5e5f;  // exact in BF16 (8 significant bits)
    const auto past_range = float_tensor(dtype::bf16, {4, 8}, values);
    for (const auto& [host, stored] : {std::pair{&in_range, dtype::f16}, std::pair{&past_range, dtype::f32}}) {
      const auto device = b->to_device(host->view);
      CHECK(device.type == stored);
      auto out = b->alloc(dtype::f32, {4, 8});
      b->embedding(out, device, upload(*b, int_tensor({4}, {0, 1, 2, 3})));
      CHECK(compare(download(*b, out), host->values, exact).empty());
    }
  }
}

}  // namespace glm4::test
