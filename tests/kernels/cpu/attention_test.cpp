// store_kv and paged_attention: several sequences with shuffled block tables, full prefills,
// prefill chunks over cached context and single decode rows in one batch, GQA head groupings,
// F32, F16 and BF16 caches.
// Cache slots outside every sequence's context hold NaN, so a read past the causal window shows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tests/kernels/op_test_support.hpp"

namespace glm4::test {
namespace {

using kernels::dtype;

struct sequence_shape {
  std::int32_t context_len;  // tokens in the cache after this step
  std::int32_t num_rows;     // query rows: the last num_rows positions of the context
};

std::string sequences_text(const std::vector<sequence_shape>& seqs) {
  std::string text = "{";
  for (std::size_t s = 0; s < seqs.size(); ++s) {
    if (s) text += ',';
    text += std::to_string(seqs[s].context_len) + "/" + std::to_string(seqs[s].num_rows);
  }
  return text + "}";
}

// The PagedAttention op of vLLM; no single GGML op (GGML_OP_FLASH_ATTN_EXT over gathered KV).
// The cache may be F16 or BF16: its keys and values are drawn as that type, so the double
// reference reads exactly what the cache holds and the bound stays the F32 one.
struct test_paged_attention : op_case {
  std::int64_t num_heads, num_kv_heads, head_dim, block_size;
  std::vector<sequence_shape> seqs;
  dtype cache_type;

  test_paged_attention(std::int64_t num_heads_, std::int64_t num_kv_heads_, std::int64_t head_dim_,
                       std::int64_t block_size_, std::vector<sequence_shape> seqs_, dtype cache_type_ = dtype::f32)
      : num_heads(num_heads_), num_kv_heads(num_kv_heads_), head_dim(head_dim_), block_size(block_size_),
        seqs(std::move(seqs_)), cache_type(cache_type_) {}
  std::string op_name() const override { return "paged_attention"; }
  std::string vars() const override {
    return "cache=" + std::string(kernels::dtype_name(cache_type)) + ",Hq=" + std::to_string(num_heads) +
           ",Hkv=" + std::to_string(num_kv_heads) + ",D=" + std::to_string(head_dim) +
           ",block=" + std::to_string(block_size) + ",seqs(context/rows)=" + sequences_text(seqs);
  }

  std::string eval(kernels::backend& backend) override {
    std::mt19937 rng(static_cast<unsigned>(num_heads * 100 + head_dim + block_size * 7 + seqs.size()));
    const auto num_seqs = static_cast<std::int64_t>(seqs.size());
    std::vector<std::int64_t> blocks_needed;
    std::int64_t total_blocks = 0, max_blocks = 1, num_tokens = 0;
    for (const auto& seq : seqs) {
      blocks_needed.push_back((seq.context_len + block_size - 1) / block_size);
      total_blocks += blocks_needed.back();
      max_blocks = std::max(max_blocks, blocks_needed.back() + 1);
      num_tokens += seq.num_rows;
    }
    const std::int64_t num_blocks = total_blocks + 3;  // spare blocks nobody owns
    std::vector<std::int32_t> free_blocks(static_cast<std::size_t>(num_blocks));
    std::iota(free_blocks.begin(), free_blocks.end(), 0);
    std::shuffle(free_blocks.begin(), free_blocks.end(), rng);

    const std::int64_t row = num_kv_heads * head_dim;
    std::vector<float> cache_k(static_cast<std::size_t>(num_blocks * block_size * row), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> cache_v(cache_k);
    std::vector<std::int32_t> block_table(static_cast<std::size_t>(num_seqs * max_blocks), 0);
    std::vector<std::int32_t> query_start{0}, context_len, positions;
    std::vector<host_tensor> keys, values;  // logical (context, Hkv, D) per sequence
    std::size_t next_free = 0;
    for (std::int64_t s = 0; s < num_seqs; ++s) {
      const auto& seq = seqs[static_cast<std::size_t>(s)];
      for (std::int64_t b = 0; b < blocks_needed[static_cast<std::size_t>(s)]; ++b)
        block_table[static_cast<std::size_t>(s * max_blocks + b)] = free_blocks[next_free++];
      keys.push_back(random_tensor(rng, cache_type, {seq.context_len, num_kv_heads, head_dim}));
      values.push_back(random_tensor(rng, cache_type, {seq.context_len, num_kv_heads, head_dim}));
      for (std::int64_t j = 0; j < seq.context_len; ++j) {
        const std::int64_t slot = block_table[static_cast<std::size_t>(s * max_blocks + j / block_size)] * block_size + j % block_size;
        for (std::int64_t i = 0; i < row; ++i) {
          cache_k[static_cast<std::size_t>(slot * row + i)] = static_cast<float>(keys.back().values[static_cast<std::size_t>(j * row + i)]);
          cache_v[static_cast<std::size_t>(slot * row + i)] = static_cast<float>(values.back().values[static_cast<std::size_t>(j * row + i)]);
        }
      }
      for (std::int32_t r = 0; r < seq.num_rows; ++r) positions.push_back(seq.context_len - seq.num_rows + r);
      query_start.push_back(query_start.back() + seq.num_rows);
      context_len.push_back(seq.context_len);
    }
    const host_tensor q = random_tensor(rng, dtype::f32, {num_tokens, num_heads, head_dim}, -2.0, 2.0);
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

    std::vector<double> want(static_cast<std::size_t>(num_tokens * num_heads * head_dim));
    const std::int64_t group = num_heads / num_kv_heads;
    for (std::int64_t s = 0; s < num_seqs; ++s)
      for (std::int64_t t = query_start[static_cast<std::size_t>(s)]; t < query_start[static_cast<std::size_t>(s + 1)]; ++t)
        for (std::int64_t h = 0; h < num_heads; ++h) {
          const std::int64_t kv = h / group, num_context = positions[static_cast<std::size_t>(t)] + 1;
          std::vector<double> scores(static_cast<std::size_t>(num_context));
          for (std::int64_t j = 0; j < num_context; ++j) {
            double dot = 0.0;
            for (std::int64_t d = 0; d < head_dim; ++d)
              dot += q.values[static_cast<std::size_t>((t * num_heads + h) * head_dim + d)] *
                     keys[static_cast<std::size_t>(s)].values[static_cast<std::size_t>((j * num_kv_heads + kv) * head_dim + d)];
            scores[static_cast<std::size_t>(j)] = dot * scale;
          }
          const double max_score = *std::max_element(scores.begin(), scores.end());
          double sum = 0.0;
          for (auto& score : scores) sum += (score = std::exp(score - max_score));
          for (std::int64_t d = 0; d < head_dim; ++d) {
            double acc = 0.0;
            for (std::int64_t j = 0; j < num_context; ++j)
              acc += scores[static_cast<std::size_t>(j)] *
                     values[static_cast<std::size_t>(s)].values[static_cast<std::size_t>((j * num_kv_heads + kv) * head_dim + d)];
            want[static_cast<std::size_t>((t * num_heads + h) * head_dim + d)] = acc / sum;
          }
        }

    const std::vector<std::int64_t> cache_shape{num_blocks, block_size, num_kv_heads, head_dim};
    kernels::tensor dk = upload(backend, float_tensor(cache_type, cache_shape, cache_k));
    kernels::tensor dv = upload(backend, float_tensor(cache_type, cache_shape, cache_v));
    kernels::attention_batch batch;
    batch.query_start = upload(backend, int_tensor({num_seqs + 1}, query_start));
    batch.context_len = upload(backend, int_tensor({num_seqs}, context_len));
    batch.block_table = upload(backend, int_tensor({num_seqs, max_blocks}, block_table));
    batch.num_seqs = static_cast<std::int32_t>(num_seqs);
    batch.max_context_len = *std::max_element(context_len.begin(), context_len.end());
    batch.block_size = static_cast<std::int32_t>(block_size);
    kernels::tensor dq = upload(backend, q);
    kernels::tensor dpos = upload(backend, int_tensor({num_tokens}, positions));
    kernels::tensor out = backend.alloc(dtype::f32, {num_tokens, num_heads, head_dim});
    backend.paged_attention(out, dq, dk, dv, batch, dpos, scale);
    return compare(download(backend, out), want, {1e-11, 1e-5, 1e-4});
  }
};

// The F16 cache's bound: what store_kv clamps to before rounding.
float clamp_to_f16(float value) {
  return value > kernels::f16_max ? kernels::f16_max : (value < -kernels::f16_max ? -kernels::f16_max : value);
}

// GGML_OP_SET_ROWS into the KV cache; into an F16 or BF16 cache each value is rounded to nearest
// even, and F16 clamps to +-65504 (keys and values span +-range).
struct test_store_kv : op_case {
  std::int64_t num_tokens, num_kv_heads, head_dim, num_blocks, block_size;
  dtype cache_type;
  double range;

  test_store_kv(std::int64_t num_tokens_, std::int64_t num_kv_heads_, std::int64_t head_dim_, std::int64_t num_blocks_,
                std::int64_t block_size_, dtype cache_type_ = dtype::f32, double range_ = 1.0)
      : num_tokens(num_tokens_), num_kv_heads(num_kv_heads_), head_dim(head_dim_), num_blocks(num_blocks_),
        block_size(block_size_), cache_type(cache_type_), range(range_) {}
  std::string op_name() const override { return "store_kv"; }
  std::string vars() const override {
    return "cache=" + std::string(kernels::dtype_name(cache_type)) + ",T=" + std::to_string(num_tokens) +
           ",Hkv=" + std::to_string(num_kv_heads) + ",D=" + std::to_string(head_dim) +
           ",blocks=" + std::to_string(num_blocks) + "x" + std::to_string(block_size) + ",range=" + std::to_string(range);
  }
  std::string eval(kernels::backend& backend) override {
    std::mt19937 rng(static_cast<unsigned>(num_tokens + head_dim));
    const std::vector<std::int64_t> cache_shape{num_blocks, block_size, num_kv_heads, head_dim};
    const host_tensor k_cache = random_tensor(rng, cache_type, cache_shape);
    const host_tensor v_cache = random_tensor(rng, cache_type, cache_shape);
    const host_tensor k = random_tensor(rng, dtype::f32, {num_tokens, num_kv_heads, head_dim}, -range, range);
    const host_tensor v = random_tensor(rng, dtype::f32, {num_tokens, num_kv_heads, head_dim}, -range, range);
    const auto stored = [&](double value) {
      const auto narrowed = static_cast<float>(value);
      return round_to(cache_type, cache_type == dtype::f16 ? clamp_to_f16(narrowed) : narrowed);
    };
    std::vector<std::int32_t> slots(static_cast<std::size_t>(num_blocks * block_size));
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng);
    slots.resize(static_cast<std::size_t>(num_tokens));

    const std::int64_t row = num_kv_heads * head_dim;
    std::vector<double> want_k(k_cache.values), want_v(v_cache.values);
    for (std::int64_t t = 0; t < num_tokens; ++t)
      for (std::int64_t i = 0; i < row; ++i) {
        want_k[static_cast<std::size_t>(slots[static_cast<std::size_t>(t)] * row + i)] =
            stored(k.values[static_cast<std::size_t>(t * row + i)]);
        want_v[static_cast<std::size_t>(slots[static_cast<std::size_t>(t)] * row + i)] =
            stored(v.values[static_cast<std::size_t>(t * row + i)]);
      }
    kernels::tensor dk_cache = upload(backend, k_cache), dv_cache = upload(backend, v_cache);
    backend.store_kv(dk_cache, dv_cache, upload(backend, k), upload(backend, v), upload(backend, int_tensor({num_tokens}, slots)));
    std::string failure = compare(download(backend, dk_cache), want_k, {0.0, 0.0, 0.0});
    if (failure.empty()) failure = compare(download(backend, dv_cache), want_v, {0.0, 0.0, 0.0});
    return failure;
  }
};

kernels::attention_batch host_batch(const host_tensor& query_start, const host_tensor& context_len,
                                    const host_tensor& block_table, std::int32_t block_size) {
  kernels::attention_batch batch;
  batch.query_start = query_start.view;
  batch.context_len = context_len.view;
  batch.block_table = block_table.view;
  batch.num_seqs = static_cast<std::int32_t>(context_len.view.dim(0));
  batch.block_size = block_size;
  return batch;
}

}  // namespace

TEST_CASE("paged_attention matches the double reference on mixed batches", "[kernels][paged_attention]") {
  const std::vector<std::vector<sequence_shape>> layouts{
      {{1, 1}},                                          // first token of a prompt
      {{17, 17}},                                        // one prefill over a block boundary
      {{1, 1}, {16, 1}, {33, 1}, {100, 1}},              // decode only
      {{40, 40}, {75, 1}, {50, 18}, {1, 1}, {16, 0}},    // prefill, decode, chunk, new, idle
      {{9, 3}, {64, 1}, {64, 64}},
  };
  struct heads { std::int64_t num_heads, num_kv_heads, head_dim; };
  std::vector<std::unique_ptr<op_case>> cases;
  for (const heads& h : {heads{8, 2, 64}, heads{4, 4, 20}, heads{6, 1, 128}, heads{4, 2, 7}})
    for (std::int64_t block_size : {16, 4, 1})
      for (const auto& layout : layouts)
        cases.push_back(std::make_unique<test_paged_attention>(h.num_heads, h.num_kv_heads, h.head_dim, block_size, layout));
  // GLM-4-9B's head layout.
  cases.push_back(std::make_unique<test_paged_attention>(32, 2, 128, 16, std::vector<sequence_shape>{{70, 5}, {130, 1}}));
  // F16 and BF16 caches, widened as they are read (including the scalar tail of D = 20).
  for (const dtype cache_type : {dtype::f16, dtype::bf16})
    for (const heads& h : {heads{32, 2, 128}, heads{4, 4, 20}})
      for (const auto& layout : layouts)
        cases.push_back(
            std::make_unique<test_paged_attention>(h.num_heads, h.num_kv_heads, h.head_dim, 16, layout, cache_type));
  for (auto& backend : backends_under_test()) run_cases(*backend, cases);
}

TEST_CASE("store_kv writes rows to their slots and nothing else", "[kernels][store_kv]") {
  std::vector<std::unique_ptr<op_case>> cases;
  cases.push_back(std::make_unique<test_store_kv>(1, 2, 128, 4, 16));
  cases.push_back(std::make_unique<test_store_kv>(37, 2, 16, 5, 8));
  cases.push_back(std::make_unique<test_store_kv>(40, 1, 5, 10, 4));
  cases.push_back(std::make_unique<test_store_kv>(0, 2, 8, 2, 4));
  for (const dtype cache_type : {dtype::f16, dtype::bf16}) {
    cases.push_back(std::make_unique<test_store_kv>(37, 2, 16, 5, 8, cache_type));
    // Outliers past F16's range: clamped there, rounded in BF16.
    cases.push_back(std::make_unique<test_store_kv>(20, 2, 24, 4, 8, cache_type, 2.0e5));
  }
  for (auto& backend : backends_under_test()) run_cases(*backend, cases);
}

TEST_CASE("paged_attention rejects layouts that would read outside the cache", "[kernels][paged_attention]") {
  auto backend = kernels::make_cpu_backend(1);
  std::mt19937 rng(9);
  const host_tensor k_cache = random_tensor(rng, dtype::f32, {2, 4, 1, 8});
  const host_tensor q = random_tensor(rng, dtype::f32, {2, 2, 8});
  kernels::tensor out = backend->alloc(dtype::f32, {2, 2, 8});
  const host_tensor query_start = int_tensor({2}, {0, 2});
  const host_tensor table = int_tensor({1, 2}, {1, 0});
  const host_tensor positions = int_tensor({2}, {4, 5});

  const host_tensor context_ok = int_tensor({1}, {6});
  CHECK_NOTHROW(backend->paged_attention(out, q.view, k_cache.view, k_cache.view,
                                         host_batch(query_start, context_ok, table, 4), positions.view, 0.5f));
  // A row past its sequence's context.
  const host_tensor context_short = int_tensor({1}, {5});
  CHECK_THROWS_AS(backend->paged_attention(out, q.view, k_cache.view, k_cache.view,
                                           host_batch(query_start, context_short, table, 4), positions.view, 0.5f),
                  std::invalid_argument);
  // A context longer than the block table row.
  const host_tensor context_long = int_tensor({1}, {9});
  CHECK_THROWS_AS(backend->paged_attention(out, q.view, k_cache.view, k_cache.view,
                                           host_batch(query_start, context_long, table, 4), positions.view, 0.5f),
                  std::invalid_argument);
  // A block id outside the cache.
  const host_tensor bad_table = int_tensor({1, 2}, {1, 2});
  CHECK_THROWS_AS(backend->paged_attention(out, q.view, k_cache.view, k_cache.view,
                                           host_batch(query_start, context_ok, bad_table, 4), positions.view, 0.5f),
                  std::invalid_argument);
  // query_start that does not cover all T rows.
  const host_tensor short_start = int_tensor({2}, {0, 1});
  CHECK_THROWS_AS(backend->paged_attention(out, q.view, k_cache.view, k_cache.view,
                                           host_batch(short_start, context_ok, table, 4), positions.view, 0.5f),
                  std::invalid_argument);
  // A cache block size that disagrees with the batch.
  CHECK_THROWS_AS(backend->paged_attention(out, q.view, k_cache.view, k_cache.view,
                                           host_batch(query_start, context_ok, table, 8), positions.view, 0.5f),
                  std::invalid_argument);
}

TEST_CASE("store_kv rejects slots past the cache and stores nothing for a padding row's negative slot",
          "[kernels][store_kv]") {
  auto backend = kernels::make_cpu_backend(1);
  std::mt19937 rng(9);
  host_tensor k_cache = random_tensor(rng, dtype::f32, {2, 4, 1, 8});
  host_tensor v_cache = random_tensor(rng, dtype::f32, {2, 4, 1, 8});
  const host_tensor k = random_tensor(rng, dtype::f32, {1, 1, 8});
  CHECK_THROWS_AS(backend->store_kv(k_cache.view, v_cache.view, k.view, k.view, int_tensor({1}, {8}).view), std::out_of_range);
  // Key and value caches of different types, and a cache of I32.
  host_tensor bf16_cache = random_tensor(rng, dtype::bf16, {2, 4, 1, 8});
  CHECK_THROWS_AS(backend->store_kv(bf16_cache.view, v_cache.view, k.view, k.view, int_tensor({1}, {0}).view),
                  std::invalid_argument);
  host_tensor i32_cache = int_tensor({2, 4, 1, 8}, std::vector<std::int32_t>(64, 0));
  CHECK_THROWS_AS(backend->store_kv(i32_cache.view, i32_cache.view, k.view, k.view, int_tensor({1}, {0}).view),
                  std::invalid_argument);
  const std::vector<float> keys_before = download(*backend, k_cache.view);
  const host_tensor two = random_tensor(rng, dtype::f32, {2, 1, 8});
  backend->store_kv(k_cache.view, v_cache.view, two.view, two.view, int_tensor({2}, {-1, 3}).view);
  const std::vector<float> keys_after = download(*backend, k_cache.view);
  for (std::size_t i = 0; i < keys_after.size(); ++i) {
    const bool in_slot_3 = i >= 3 * 8 && i < 4 * 8;
    CHECK(keys_after[i] == (in_slot_3 ? static_cast<float>(two.values[8 + i - 3 * 8]) : keys_before[i]));
  }
}

}  // namespace glm4::test
