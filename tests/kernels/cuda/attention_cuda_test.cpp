// CUDA rotary, store_kv, copy and paged_attention vs the CPU backend: GLM-4 partial rotary at far
// positions, shuffled block tables, mixed prefill / chunked prefill / decode rows in one batch, GQA.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "kernels/cuda/cuda_backend.hpp"
#include "tests/kernels/cuda/gpu_test_support.hpp"
#include "tests/kernels/cuda/parity_support.hpp"

namespace glm4::test {
namespace {

using kernels::dtype;

struct sequence_shape {
  std::int32_t context_len;  // tokens cached after the step
  std::int32_t num_rows;     // query rows: the last num_rows positions
};

// Host inputs of one paged_attention call; cache slots nobody owns hold values that would show if read.
struct attention_inputs {
  host_tensor q, k_cache, v_cache, query_start, context_len, block_table, positions;
  std::int32_t num_seqs = 0, max_context_len = 0, block_size = 0;
};

attention_inputs make_attention_inputs(std::mt19937& rng, std::int64_t num_heads, std::int64_t num_kv_heads,
                                       std::int64_t head_dim, std::int32_t block_size,
                                       const std::vector<sequence_shape>& seqs, dtype cache_type) {
  attention_inputs in;
  in.num_seqs = static_cast<std::int32_t>(seqs.size());
  in.block_size = block_size;
  std::int64_t total_blocks = 0, max_blocks = 1, num_tokens = 0;
  for (const auto& seq : seqs) {
    const std::int64_t blocks = (seq.context_len + block_size - 1) / block_size;
    total_blocks += blocks;
    max_blocks = std::max(max_blocks, blocks + 1);
    num_tokens += seq.num_rows;
    in.max_context_len = std::max(in.max_context_len, seq.context_len);
  }
  const std::int64_t num_blocks = total_blocks + 3;
  std::vector<std::int32_t> free_blocks(static_cast<std::size_t>(num_blocks));
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
  std::vector<std::int32_t> table(static_cast<std::size_t>(in.num_seqs * max_blocks), 0);
  std::vector<std::int32_t> query_start{0}, context_len, positions;
  std::size_t next_free = 0;
  for (std::size_t s = 0; s < seqs.size(); ++s) {
    const std::int64_t blocks = (seqs[s].context_len + block_size - 1) / block_size;
    for (std::int64_t b = 0; b < blocks; ++b) table[s * static_cast<std::size_t>(max_blocks) + static_cast<std::size_t>(b)] = free_blocks[next_free++];
    for (std::int32_t r = 0; r < seqs[s].num_rows; ++r) positions.push_back(seqs[s].context_len - seqs[s].num_rows + r);
    query_start.push_back(query_start.back() + seqs[s].num_rows);
    context_len.push_back(seqs[s].context_len);
  }
  in.q = random_tensor(rng, dtype::f32, {num_tokens, num_heads, head_dim}, -2.0, 2.0);
  in.k_cache = random_tensor(rng, cache_type, {num_blocks, block_size, num_kv_heads, head_dim}, -2.0, 2.0);
  in.v_cache = random_tensor(rng, cache_type, {num_blocks, block_size, num_kv_heads, head_dim}, -2.0, 2.0);
  in.query_start = int_tensor({in.num_seqs + 1}, query_start);
  in.context_len = int_tensor({in.num_seqs}, context_len);
  in.block_table = int_tensor({in.num_seqs, max_blocks}, table);
  in.positions = int_tensor({num_tokens}, positions);
  return in;
}

std::string sequences_text(const std::vector<sequence_shape>& seqs) {
  std::string text = "{";
  for (const auto& seq : seqs) {
    if (text.size() > 1) text += ',';
    text += std::to_string(seq.context_len);
    text += '/';
    text += std::to_string(seq.num_rows);
  }
  return text + "}";
}

}  // namespace

TEST_CASE("cuda paged_attention matches the CPU backend on mixed batches", "[cuda][attention]") {
  if (!have_gpu_or_skip()) return;
  // The grouped kernel whole, and with contexts split over blocks (as many pieces as the GPU wants).
  const auto [kernel, max_splits] = GENERATE(std::pair{kernels::cuda::attention_kernel::per_head, 1},
                                             std::pair{kernels::cuda::attention_kernel::grouped, 1},
                                             std::pair{kernels::cuda::attention_kernel::grouped, 64});
  const std::string kernel_name = kernel == kernels::cuda::attention_kernel::grouped
                                      ? "grouped (max splits " + std::to_string(max_splits) + ")"
                                      : "per_head";
  std::mt19937 rng(21);
  std::vector<parity_case> cases;
  struct heads {
    std::int64_t q, kv, dim;
  };
  const std::vector<std::vector<sequence_shape>> batches{
      {{1, 1}},                                  // first decode row
      {{37, 37}},                                // one full prefill
      {{100, 1}, {16, 16}, {50, 3}, {1, 1}},     // decode, aligned prefill, prefill chunk, single token
      {{0, 0}, {300, 2}, {33, 33}},              // an idle sequence and a long context
      {{1500, 1}, {900, 4}},                     // contexts spanning many blocks and all warps
  };
  struct shape {
    heads h;
    std::int32_t block_size;
    dtype cache_type;
  };
  std::vector<shape> shapes;
  for (heads h : {heads{4, 4, 64}, heads{32, 2, 128}, heads{8, 1, 80}, heads{2, 2, 256}, heads{6, 3, 24},
                  heads{64, 1, 64}, heads{48, 8, 128}, heads{32, 2, 192}})
    for (std::int32_t block_size : {16, 32}) shapes.push_back({h, block_size, dtype::f32});
  // BF16 and F16 caches (the widening is all that differs from F32): GLM-4-9B's heads, and a head
  // dim with a partial warp.
  shapes.push_back({heads{32, 2, 128}, 16, dtype::bf16});
  shapes.push_back({heads{6, 3, 24}, 16, dtype::f16});
  for (const auto& [h, block_size, cache_type] : shapes)
    for (const auto& seqs : batches) {
      auto in = make_attention_inputs(rng, h.q, h.kv, h.dim, block_size, seqs, cache_type);
      const float scale = 1.0f / std::sqrt(static_cast<float>(h.dim));
      cases.push_back({"paged_attention",
                       kernel_name + ",cache=" + type_text(cache_type) + ",Hq=" + std::to_string(h.q) +
                           ",Hkv=" + std::to_string(h.kv) + ",D=" + std::to_string(h.dim) +
                           ",block=" + std::to_string(block_size) + ",seqs(context/rows)=" + sequences_text(seqs),
                       tolerance{1e-10, 2e-5, 1e-4}, [in, scale, kernel = kernel, max_splits = max_splits](kernels::backend& b) {
                         if (auto* gpu = dynamic_cast<kernels::cuda::cuda_backend*>(&b)) {
                           gpu->set_attention_kernel(kernel);
                           gpu->set_max_attention_splits(max_splits);
                         }
                         kernels::attention_batch batch;
                         batch.query_start = upload(b, in.query_start);
                         batch.context_len = upload(b, in.context_len);
                         batch.block_table = upload(b, in.block_table);
                         batch.num_seqs = in.num_seqs;
                         batch.max_context_len = in.max_context_len;
                         batch.block_size = in.block_size;
                         auto out = b.alloc(dtype::f32, in.q.shape());
                         b.paged_attention(out, upload(b, in.q), upload(b, in.k_cache), upload(b, in.v_cache), batch,
                                           upload(b, in.positions), scale);
                         return download(b, out);
                       }});
    }
  check_parity(cases);
}

TEST_CASE("cuda store_kv writes the same slots as the CPU backend", "[cuda][attention]") {
  if (!have_gpu_or_skip()) return;
  std::mt19937 rng(22);
  std::vector<parity_case> cases;
  // F16 and BF16 caches with keys and values past F16's range: the CPU backend is the reference
  // for rounding and for the clamp to +-65504.
  for (dtype cache_type : {dtype::f32, dtype::f16, dtype::bf16})
    for (std::int64_t num_tokens : {1, 20, 64})
      for (std::int64_t num_kv_heads : {1, 2, 8})
        for (std::int64_t head_dim : {24, 128}) {
          const double range = cache_type == dtype::f32 ? 1.0 : 1.0e5;
          const std::int64_t num_blocks = 8, block_size = 16;
          std::vector<std::int32_t> all_slots(static_cast<std::size_t>(num_blocks * block_size));
          std::iota(all_slots.begin(), all_slots.end(), 0);
          std::shuffle(all_slots.begin(), all_slots.end(), rng);
          auto slots = int_tensor({num_tokens}, {all_slots.begin(), all_slots.begin() + num_tokens});
          auto k = random_tensor(rng, dtype::f32, {num_tokens, num_kv_heads, head_dim}, -range, range);
          auto v = random_tensor(rng, dtype::f32, {num_tokens, num_kv_heads, head_dim}, -range, range);
          auto cache = random_tensor(rng, cache_type, {num_blocks, block_size, num_kv_heads, head_dim});
          cases.push_back({"store_kv",
                           "k=" + shape_text(k.shape()) + ",cache=" + type_text(cache_type) + shape_text(cache.shape()),
                           tolerance{0.0, 0.0, 0.0}, [=](kernels::backend& b) {
                             auto k_cache = upload(b, cache), v_cache = upload(b, cache);
                             b.store_kv(k_cache, v_cache, upload(b, k), upload(b, v), upload(b, slots));
                             auto keys = download(b, k_cache), values = download(b, v_cache);
                             keys.insert(keys.end(), values.begin(), values.end());
                             return keys;
                           }});
        }
  check_parity(cases);
}

TEST_CASE("cuda copy duplicates KV blocks as the CPU backend does", "[cuda][attention]") {
  if (!have_gpu_or_skip()) return;
  std::mt19937 rng(24);
  std::vector<parity_case> cases;
  for (dtype cache_type : {dtype::f32, dtype::f16, dtype::bf16}) {
    auto cache = random_tensor(rng, cache_type, {6, 16, 2, 24});
    cases.push_back({"copy", "cache=" + type_text(cache_type) + shape_text(cache.shape()) + ", blocks 1->4, 5->0",
                     tolerance{0.0, 0.0, 0.0}, [=](kernels::backend& b) {
                       auto pool = upload(b, cache);
                       for (const auto [from, to] : {std::pair{1, 4}, std::pair{5, 0}}) {
                         kernels::tensor dst = kernels::view_rows(pool, to, 1);
                         b.copy(dst, kernels::view_rows(pool, from, 1));
                       }
                       return download(b, pool);
                     }});
  }
  check_parity(cases);
}

TEST_CASE("cuda rotary matches the CPU backend at near and far positions", "[cuda][rotary]") {
  if (!have_gpu_or_skip()) return;
  std::mt19937 rng(23);
  std::vector<parity_case> cases;
  for (std::int64_t num_tokens : {1, 9, 200})
    for (std::int64_t num_heads : {2, 32})
      for (std::int64_t head_dim : {64, 128})
        for (bool partial : {true, false})
          for (float theta : {10000.0f, 5000000.0f}) {
            const std::int64_t rotary_dim = partial ? head_dim / 2 : head_dim;
            auto x = random_tensor(rng, dtype::f32, {num_tokens, num_heads, head_dim}, -3.0, 3.0);
            std::vector<std::int32_t> position_values;
            for (std::int64_t t = 0; t < num_tokens; ++t)
              position_values.push_back(t == 0 ? 0 : static_cast<std::int32_t>(rng() % 131072));
            auto positions = int_tensor({num_tokens}, position_values);
            cases.push_back({"rotary",
                             "x=" + shape_text(x.shape()) + ",rotary_dim=" + std::to_string(rotary_dim) +
                                 ",theta=" + std::to_string(theta),
                             tolerance{1e-12, 1e-5, 1e-5}, [=](kernels::backend& b) {
                               auto dx = upload(b, x);
                               b.rotary(dx, upload(b, positions), rotary_dim, theta);
                               return download(b, dx);
                             }});
          }
  check_parity(cases);
}

}  // namespace glm4::test
