// Row gathers and element-wise ops: embedding, gather_rows, swiglu, add_inplace.
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_ops.hpp"
#include "kernels/cpu/simd.hpp"

namespace glm4::kernels::cpu {
namespace {

// Throws unless every index lies in [0, limit).
void expect_indices(const tensor& indices, std::int64_t limit, const char* what) {
  const std::int32_t* values = indices.as<std::int32_t>();
  for (std::int64_t i = 0; i < indices.numel(); ++i)
    if (values[i] < 0 || values[i] >= limit)
      throw std::out_of_range(std::string(what) + ": index " + std::to_string(values[i]) + " at " + std::to_string(i) +
                              " is outside [0, " + std::to_string(limit) + ")");
}

}  // namespace

void embedding(tensor& out, const tensor& table, const tensor& ids, int num_threads) {
  expect_float_type(table, "embedding table");
  if (table.rank() != 2) throw std::invalid_argument("embedding: table must be (V, H), got " + describe(table));
  expect_rank(ids, dtype::i32, 1, "embedding ids");
  const std::int64_t num_tokens = ids.dim(0), hidden = table.dim(1);
  expect_shape(out, dtype::f32, {num_tokens, hidden}, "embedding out");
  expect_indices(ids, table.dim(0), "embedding ids");
  const std::int32_t* id = ids.as<std::int32_t>();
  float* dst = out.as<float>();
  visit_float_type(table.type, [&]<class W>(type_tag<W>) {
    const W* rows = table.as<W>();
    const bool parallel = num_tokens > 1 && num_tokens * hidden >= min_parallel_elements;
#pragma omp parallel for schedule(static) num_threads(num_threads) if (parallel)
    for (std::int64_t t = 0; t < num_tokens; ++t) {
      const W* src = rows + static_cast<std::int64_t>(id[t]) * hidden;
      for (std::int64_t i = 0; i < hidden; ++i) dst[t * hidden + i] = to_f32(src[i]);
    }
  });
}

void gather_rows(tensor& out, const tensor& x, const tensor& rows, int num_threads) {
  (void)num_threads;  // a few rows of memcpy: not worth a thread team
  expect_rank(x, dtype::f32, 2, "gather_rows x");
  expect_rank(rows, dtype::i32, 1, "gather_rows rows");
  const std::int64_t hidden = x.dim(1);
  expect_shape(out, dtype::f32, {rows.dim(0), hidden}, "gather_rows out");
  expect_indices(rows, x.dim(0), "gather_rows rows");
  if (out.data == x.data && rows.dim(0) > 0) throw std::invalid_argument("gather_rows: out must not alias x");
  const std::int32_t* row = rows.as<std::int32_t>();
  for (std::int64_t r = 0; r < rows.dim(0); ++r)
    std::memcpy(out.as<float>() + r * hidden, x.as<float>() + static_cast<std::int64_t>(row[r]) * hidden,
                static_cast<std::size_t>(hidden) * sizeof(float));
}

void swiglu(tensor& out, const tensor& gate_up, int num_threads) {
  expect_rank(gate_up, dtype::f32, 2, "swiglu gate_up");
  if (gate_up.dim(1) % 2 != 0) throw std::invalid_argument("swiglu: odd width in " + describe(gate_up));
  const std::int64_t num_tokens = gate_up.dim(0), ffn = gate_up.dim(1) / 2;
  expect_shape(out, dtype::f32, {num_tokens, ffn}, "swiglu out");
  const float* src = gate_up.as<float>();
  float* dst = out.as<float>();
  const bool parallel = num_tokens * ffn >= min_parallel_elements;
#pragma omp parallel for schedule(static) num_threads(num_threads) if (parallel)
  for (std::int64_t t = 0; t < num_tokens; ++t) {
    const float* gate = src + t * 2 * ffn;
    const float* up = gate + ffn;
    for (std::int64_t i = 0; i < ffn; ++i) {
      const float g = gate[i];
      dst[t * ffn + i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  }
}

void add_inplace(tensor& x, const tensor& y, int num_threads) {
  expect_rank(x, dtype::f32, x.rank(), "add_inplace x");
  expect_shape(y, dtype::f32, x.shape, "add_inplace y");
  float* dst = x.as<float>();
  const float* src = y.as<float>();
  const std::int64_t count = x.numel();
  const bool parallel = count >= min_parallel_elements * 4;
#pragma omp parallel for simd schedule(static) num_threads(num_threads) if (parallel)
  for (std::int64_t i = 0; i < count; ++i) dst[i] += src[i];
}

}  // namespace glm4::kernels::cpu
