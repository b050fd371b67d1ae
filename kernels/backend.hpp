// The Backend interface: memory and the ops a GLM-4 forward needs, one implementation per device kind.
//
// Shape names: T tokens in the step, H hidden size, V vocabulary, Hq query heads, Hkv KV heads,
// D head dim, F FFN size. Activations are F32 on every backend; weights may be F32, F16 or BF16
// and are widened to F32 inside the op (FP32 accumulation always: GLM-4 overflows in FP16).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/sampling_spec.hpp"
#include "kernels/tensor.hpp"

namespace glm4::kernels {

namespace comm {
class communicator;
struct group_ticket;
}  // namespace comm

enum class device_kind { cpu, cuda };

/// Layout of one mixed prefill/decode step over the paged KV cache.
/// Sequence s owns query rows [query_start[s], query_start[s+1]); after this step's store_kv its
/// cache holds context_len[s] tokens, reached through block_table row s. A query row at
/// position p attends to the cached positions 0..p of its own sequence (causal).
struct attention_batch {
  tensor query_start;   // I32 (num_seqs + 1)
  tensor context_len;   // I32 (num_seqs)
  tensor block_table;   // I32 (num_seqs, max_blocks_per_seq); unused entries are 0
  std::int32_t num_seqs = 0;
  std::int32_t max_context_len = 0;  // upper bound over context_len, lets kernels size scratch
  std::int32_t block_size = 16;
};

class backend {
 public:
  virtual ~backend() = default;

  virtual device_kind kind() const = 0;
  /// "cpu (2 threads)", "cuda:0 NVIDIA H100 (sm_90)".
  virtual std::string name() const = 0;

  // ---- memory

  /// Uninitialised device memory, owned by the returned tensor.
  virtual tensor alloc(dtype type, std::vector<std::int64_t> shape) = 0;
  /// Copies host memory (nbytes of dst) into dst.
  virtual void upload(tensor& dst, const void* host_src) = 0;
  /// Copies src into host memory (nbytes of src).
  virtual void download(const tensor& src, void* host_dst) = 0;
  /// Copies src into dst on the device, in order with the ops around it and without waiting: both of
  /// one type and element count, not overlapping (KV blocks a copy-on-write duplicates).
  /// std::invalid_argument otherwise.
  virtual void copy(tensor& dst, const tensor& src) = 0;
  /// A device tensor with the contents of a host tensor; the CPU backend returns the host view
  /// itself (zero copy, e.g. straight out of a memory-mapped checkpoint).
  virtual tensor to_device(const tensor& host) = 0;
  /// Blocks until every op issued so far has finished (optional: the CPU backend is synchronous).
  virtual void synchronize() {}

  // ---- ops

  /// out (T, H) F32 = table[ids[t]]; table (V, H) any float type; ids I32 (T).
  virtual void embedding(tensor& out, const tensor& table, const tensor& ids) = 0;

  /// out (T, H) = x / sqrt(mean(x^2) + eps) * weight; x (T, H) F32; weight (H) any float type.
  /// out may alias x.
  virtual void rms_norm(tensor& out, const tensor& x, const tensor& weight, float eps) = 0;

  /// out (T, N) F32 = x (T, K) F32 . w^T (+ bias); w (N, K) any float type, as stored by
  /// torch Linear; bias (N) any float type or nullptr.
  virtual void matmul(tensor& out, const tensor& x, const tensor& w, const tensor* bias) = 0;

  /// In place on x (T, heads, D) F32: GLM-4 rotary on the first rotary_dim dims of each head,
  /// interleaved pairs (2i, 2i+1) rotated by positions[t] * theta^(-2i / rotary_dim);
  /// dims from rotary_dim on pass through. positions I32 (T).
  virtual void rotary(tensor& x, const tensor& positions, std::int64_t rotary_dim, float theta) = 0;

  /// Writes k[t], v[t] (T, Hkv, D) F32 into the caches (num_blocks, block_size, Hkv, D) at slot
  /// slots[t] = block * block_size + offset; slots I32 (T). A negative slot marks a padding row:
  /// nothing is stored for it. Both caches have one type, F32, F16 or BF16; narrowing rounds to
  /// nearest even, and F16 clamps to +-f16_max (kernels/dtype.hpp).
  virtual void store_kv(tensor& k_cache, tensor& v_cache, const tensor& k, const tensor& v, const tensor& slots) = 0;

  /// out (T, Hq, D) F32: softmax(scale * q . k^T) . v over each row's causal context, read
  /// through the block tables (caches as in store_kv, widened to F32); query head h uses KV head
  /// h / (Hq / Hkv). positions I32 (T).
  virtual void paged_attention(tensor& out, const tensor& q, const tensor& k_cache, const tensor& v_cache,
                               const attention_batch& batch, const tensor& positions, float scale) = 0;

  /// out (T, F) = silu(gate_up[:, :F]) * gate_up[:, F:]; gate_up (T, 2F) F32.
  virtual void swiglu(tensor& out, const tensor& gate_up) = 0;

  /// x (T, H) += y (T, H), both F32.
  virtual void add_inplace(tensor& x, const tensor& y) = 0;

  /// out (R, H) = x[rows[r]]; x (T, H) F32; rows I32 (R). Picks the rows that need logits.
  virtual void gather_rows(tensor& out, const tensor& x, const tensor& rows) = 0;

  /// ids[r] = the token row r of logits (R, V) F32 samples under rows[r] (kernels/sampling_spec.hpp);
  /// rows has R entries and its edits index into `edits`. Waits for the result, like download().
  virtual void sample_rows(std::span<std::int32_t> ids, const tensor& logits, std::span<const row_sampling_spec> rows,
                           std::span<const token_edit> edits) = 0;

  /// For each request: the log-softmax of its row of logits (R, V) F32, sanitized as sample_rows
  /// sanitizes it, at the chosen token into chosen[i], and the row's `top` most likely tokens
  /// (largest first, lowest id on ties) into ranked[i * top, (i + 1) * top): what engine::sampler
  /// reports as raw logprobs, without the row leaving the device. top <= min(V,
  /// max_ranked_logprobs). Waits for the result, like download().
  virtual void row_logprobs(const tensor& logits, std::span<const logprob_request> requests, std::int32_t top,
                            std::span<float> chosen, std::span<ranked_logprob> ranked) = 0;

  // ---- recorded op sequences (CUDA graphs)

  /// Runs the ops `ops` issues. A backend that records (CUDA) runs them the first time under
  /// `key`, records them, and replays the recording at later calls with that key instead of
  /// calling `ops`: the ops must then touch the same buffers with the same arguments each time,
  /// and the caller calls forget_recordings() whenever one of those buffers moves. Others just
  /// call `ops`.
  virtual void run_recorded(std::uint64_t key, const std::function<void()>& ops) {
    (void)key;
    ops();
  }
  /// Drops every recording (the buffers they use have moved or are about to).
  virtual void forget_recordings() {}

  // ---- tensor-parallel groups (kernels/comm/group_ticket.hpp)

  /// The id of a new collective group of ranks on this kind of device, made by one of them:
  /// NCCL's unique id on a GPU, a shared-memory group of this process on the CPU.
  virtual std::vector<std::uint8_t> make_group_id() = 0;
  /// This device's communicator in the group: NCCL blocks until every rank has joined; shared
  /// memory returns at once. Throws std::runtime_error (or invalid_argument for a bad ticket).
  virtual std::shared_ptr<comm::communicator> join_group(const comm::group_ticket& ticket) = 0;
};

/// The CPU backend; num_threads 0 means one per hardware thread.
std::unique_ptr<backend> make_cpu_backend(int num_threads = 0);

}  // namespace glm4::kernels
