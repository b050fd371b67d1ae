// Paged KV cache ops: store_kv writes a step's keys and values into their slots (narrowed to the
// cache's F16 or BF16 when it has one); paged_attention reads each query row's causal context back
// through its sequence's block table, widened to F32 (GQA, FP32 scores, softmax and accumulation).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_ops.hpp"
#include "kernels/cpu/simd.hpp"

namespace glm4::kernels::cpu {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("paged_attention: " + what); }

// Checks the batch layout against T rows and the cache, and returns the sequence of every row.
std::vector<std::int32_t> row_sequences(const attention_batch& batch, const tensor& positions, std::int64_t num_tokens,
                                        std::int64_t num_blocks) {
  const std::int64_t num_seqs = batch.num_seqs;
  expect_shape(batch.query_start, dtype::i32, {num_seqs + 1}, "paged_attention query_start");
  expect_shape(batch.context_len, dtype::i32, {num_seqs}, "paged_attention context_len");
  expect_rank(batch.block_table, dtype::i32, 2, "paged_attention block_table");
  if (batch.block_table.dim(0) != num_seqs) fail("block_table has " + describe(batch.block_table) + " rows");
  expect_shape(positions, dtype::i32, {num_tokens}, "paged_attention positions");

  const std::int32_t* query_start = batch.query_start.as<std::int32_t>();
  const std::int32_t* context_len = batch.context_len.as<std::int32_t>();
  const std::int32_t* block_table = batch.block_table.as<std::int32_t>();
  const std::int32_t* position = positions.as<std::int32_t>();
  const std::int64_t max_blocks = batch.block_table.dim(1);
  if (query_start[0] != 0 || query_start[num_seqs] != num_tokens)
    fail("query_start must run from 0 to T = " + std::to_string(num_tokens));

  std::vector<std::int32_t> seq_of_row(static_cast<std::size_t>(num_tokens));
  for (std::int64_t s = 0; s < num_seqs; ++s) {
    const std::int64_t first = query_start[s], last = query_start[s + 1], context = context_len[s];
    const std::string where = "sequence " + std::to_string(s);
    if (last < first) fail("query_start decreases at " + where);
    if (context < 0 || context > max_blocks * batch.block_size) fail(where + " context_len does not fit its block table");
    for (std::int64_t b = 0; b < (context + batch.block_size - 1) / batch.block_size; ++b) {
      const std::int32_t block = block_table[s * max_blocks + b];
      if (block < 0 || block >= num_blocks) fail(where + " block table entry " + std::to_string(b) + " is outside the cache");
    }
    for (std::int64_t t = first; t < last; ++t) {
      if (position[t] < 0 || position[t] >= context)
        fail("row " + std::to_string(t) + " position " + std::to_string(position[t]) + " outside the context of " + where);
      seq_of_row[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(s);
    }
  }
  return seq_of_row;
}

}  // namespace

void store_kv(tensor& k_cache, tensor& v_cache, const tensor& k, const tensor& v, const tensor& slots, int num_threads) {
  expect_kv_cache(k_cache, v_cache);
  expect_rank(k, dtype::f32, 3, "store_kv k");
  expect_shape(v, dtype::f32, k.shape, "store_kv v");
  expect_shape(slots, dtype::i32, {k.dim(0)}, "store_kv slots");
  const std::int64_t row = k.dim(1) * k.dim(2);
  if (k.dim(1) != k_cache.dim(2) || k.dim(2) != k_cache.dim(3))
    throw std::invalid_argument("store_kv: k " + describe(k) + " does not match the cache " + describe(k_cache));
  const std::int64_t num_slots = k_cache.dim(0) * k_cache.dim(1);
  const std::int32_t* slot = slots.as<std::int32_t>();
  for (std::int64_t t = 0; t < k.dim(0); ++t)
    if (slot[t] >= num_slots)
      throw std::out_of_range("store_kv: slot " + std::to_string(slot[t]) + " of row " + std::to_string(t) +
                              " is outside the cache of " + std::to_string(num_slots) + " slots");
  const bool parallel = k.numel() >= min_parallel_elements;
  visit_float_type(k_cache.type, [&](auto tag) {
    using W = typename decltype(tag)::type;
    W* keys = k_cache.as<W>();
    W* values = v_cache.as<W>();
#pragma omp parallel for schedule(static) num_threads(num_threads) if (parallel)
    for (std::int64_t t = 0; t < k.dim(0); ++t) {
      if (slot[t] < 0) continue;  // a padding row
      const float* key = k.as<float>() + t * row;
      const float* value = v.as<float>() + t * row;
      for (std::int64_t i = 0; i < row; ++i) {
        narrow_to(keys + slot[t] * row + i, key[i]);
        narrow_to(values + slot[t] * row + i, value[i]);
      }
    }
  });
}

void paged_attention(tensor& out, const tensor& q, const tensor& k_cache, const tensor& v_cache,
                     const attention_batch& batch, const tensor& positions, float scale, int num_threads) {
  expect_kv_cache(k_cache, v_cache);
  expect_rank(q, dtype::f32, 3, "paged_attention q");
  expect_shape(out, dtype::f32, q.shape, "paged_attention out");
  const std::int64_t num_tokens = q.dim(0), num_heads = q.dim(1), head_dim = q.dim(2);
  const std::int64_t num_blocks = k_cache.dim(0), block_size = k_cache.dim(1), num_kv_heads = k_cache.dim(2);
  if (k_cache.dim(3) != head_dim) fail("head dim of q " + describe(q) + " and cache " + describe(k_cache) + " differ");
  if (num_kv_heads == 0 || num_heads % num_kv_heads != 0) fail("query heads are not a multiple of KV heads");
  if (block_size != batch.block_size) fail("cache block size differs from batch.block_size");
  if (out.data == q.data && num_tokens > 0) fail("out must not alias q");
  const std::vector<std::int32_t> seq_of_row = row_sequences(batch, positions, num_tokens, num_blocks);

  std::int64_t max_context = 0;
  for (std::int64_t s = 0; s < batch.num_seqs; ++s)
    max_context = std::max<std::int64_t>(max_context, batch.context_len.as<std::int32_t>()[s]);
  const std::int64_t group = num_heads / num_kv_heads;
  const std::int64_t max_blocks = batch.block_table.dim(1);
  const std::int64_t slot_stride = num_kv_heads * head_dim;
  const std::int32_t* block_table = batch.block_table.as<std::int32_t>();
  const std::int32_t* position = positions.as<std::int32_t>();

  // Items are (row, group of query heads sharing one KV head): each key and value row is read
  // once for the whole group. Groups shrink until there are enough items to keep every thread busy.
  std::int64_t heads_per_item = group;
  for (std::int64_t h = group; h >= 1; --h)
    if (group % h == 0) {
      heads_per_item = h;
      if (num_tokens * (num_heads / h) >= 4 * num_threads) break;
    }
  const std::int64_t items_per_row = num_heads / heads_per_item;
  const std::int64_t num_items = num_tokens * items_per_row;
  visit_float_type(k_cache.type, [&](auto tag) {
    using W = typename decltype(tag)::type;
    const W* keys = k_cache.as<W>();
    const W* values = v_cache.as<W>();
#pragma omp parallel num_threads(num_threads) if (num_items > 1)
    {
      std::vector<float> scores(static_cast<std::size_t>(heads_per_item * max_context));
      std::vector<float> acc(static_cast<std::size_t>(heads_per_item * head_dim));
#pragma omp for schedule(static)
      for (std::int64_t item = 0; item < num_items; ++item) {
        const std::int64_t t = item / items_per_row, first_head = (item % items_per_row) * heads_per_item;
        const std::int32_t* table = block_table + seq_of_row[static_cast<std::size_t>(t)] * max_blocks;
        const std::int64_t num_context = static_cast<std::int64_t>(position[t]) + 1;
        const std::int64_t head_offset = (first_head / group) * head_dim;
        const float* query = q.as<float>() + (t * num_heads + first_head) * head_dim;  // (heads_per_item, D)
        // The slot of context position j, walked block by block.
        const auto for_each_slot = [&](auto&& visit) {
          for (std::int64_t start = 0; start < num_context; start += block_size) {
            const std::int64_t base = static_cast<std::int64_t>(table[start / block_size]) * block_size;
            const std::int64_t count = std::min(block_size, num_context - start);
            for (std::int64_t o = 0; o < count; ++o) visit(start + o, base + o);
          }
        };

        for_each_slot([&](std::int64_t j, std::int64_t slot) {
          const W* key = keys + slot * slot_stride + head_offset;
          for (std::int64_t g = 0; g < heads_per_item; ++g)
            scores[static_cast<std::size_t>(g * max_context + j)] =
                scale * dot_f32(query + g * head_dim, key, head_dim);
        });
        for (std::int64_t g = 0; g < heads_per_item; ++g) {
          float* row = scores.data() + g * max_context;
          const float max_score = *std::max_element(row, row + num_context);
          float sum = 0.0f;
          for (std::int64_t j = 0; j < num_context; ++j) sum += (row[j] = std::exp(row[j] - max_score));
          // Folding 1 / sum into the probabilities costs one rounding, as dividing at the end does.
          const float inv_sum = 1.0f / sum;
          for (std::int64_t j = 0; j < num_context; ++j) row[j] *= inv_sum;
        }
        std::fill(acc.begin(), acc.end(), 0.0f);
        for_each_slot([&](std::int64_t j, std::int64_t slot) {
          const W* value = values + slot * slot_stride + head_offset;
          for (std::int64_t g = 0; g < heads_per_item; ++g)
            axpy_f32(acc.data() + g * head_dim, scores[static_cast<std::size_t>(g * max_context + j)], value, head_dim);
        });
        std::copy(acc.begin(), acc.end(), out.as<float>() + (t * num_heads + first_head) * head_dim);
      }
    }
  });
}

}  // namespace glm4::kernels::cpu
