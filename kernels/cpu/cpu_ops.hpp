// The CPU implementations of the backend ops; semantics and shapes as documented in kernels/backend.hpp.
// Each checks its arguments (std::invalid_argument / std::out_of_range) before touching memory and runs
// on num_threads OpenMP threads.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/backend.hpp"
#include "kernels/tensor.hpp"

namespace glm4::kernels::cpu {

void embedding(tensor& out, const tensor& table, const tensor& ids, int num_threads);
void rms_norm(tensor& out, const tensor& x, const tensor& weight, float eps, int num_threads);
void matmul(tensor& out, const tensor& x, const tensor& w, const tensor* bias, int num_threads);
void rotary(tensor& x, const tensor& positions, std::int64_t rotary_dim, float theta, int num_threads);
void store_kv(tensor& k_cache, tensor& v_cache, const tensor& k, const tensor& v, const tensor& slots, int num_threads);
void paged_attention(tensor& out, const tensor& q, const tensor& k_cache, const tensor& v_cache,
                     const attention_batch& batch, const tensor& positions, float scale, int num_threads);
void swiglu(tensor& out, const tensor& gate_up, int num_threads);
void add_inplace(tensor& x, const tensor& y, int num_threads);
void gather_rows(tensor& out, const tensor& x, const tensor& rows, int num_threads);
void sample_rows(std::span<std::int32_t> ids, const tensor& logits, std::span<const row_sampling_spec> rows,
                 std::span<const token_edit> edits, int num_threads);

/// Throws std::invalid_argument unless logits is F32 (R, V) with V > 0, ids and rows have R
/// entries, and every row's edits lie inside `edits` (shared with the CUDA backend).
void expect_sampling_args(std::span<std::int32_t> ids, const tensor& logits, std::span<const row_sampling_spec> rows,
                          std::span<const token_edit> edits);

void row_logprobs(const tensor& logits, std::span<const logprob_request> requests, std::int32_t top,
                  std::span<float> chosen, std::span<ranked_logprob> ranked, int num_threads);

/// Throws std::invalid_argument unless logits is F32 (R, V), every request names a row in [0, R)
/// and a token in [0, V), top is in [0, min(V, max_ranked_logprobs)], and chosen and ranked hold
/// one and `top` entries per request (shared with the CUDA backend).
void expect_logprob_args(const tensor& logits, std::span<const logprob_request> requests, std::int32_t top,
                         std::span<float> chosen, std::span<ranked_logprob> ranked);

/// Ops below this many elements run on one thread: waking the team costs more than it saves.
inline constexpr std::int64_t min_parallel_elements = 1 << 15;

/// Throws std::invalid_argument naming `what` unless t is F32, F16 or BF16.
void expect_float_type(const tensor& t, const char* what);
/// Throws std::invalid_argument unless dst and src have one type and element count and do not
/// overlap (backend::copy; shared with the CUDA backend).
void expect_copy_args(const tensor& dst, const tensor& src);
/// Throws std::invalid_argument unless k_cache is (num_blocks, block_size, Hkv, D) of F32, F16 or
/// BF16 and v_cache has its type and shape.
void expect_kv_cache(const tensor& k_cache, const tensor& v_cache);
/// Throws std::invalid_argument naming `what` unless t has the given type and rank.
void expect_rank(const tensor& t, dtype type, int rank, const char* what);

}  // namespace glm4::kernels::cpu
