// The GLM-4 forward pass over one mixed prefill/decode step, on any backend.
//
// Per layer (glm / chatglm layouts):
//   h += o_proj(attn(rope(q, k) of input_layernorm(h)))
//   h += down(swiglu(gate_up(post_attention_layernorm(h))))
// The glm4 layout (post_norms) also normalises each branch before the residual add:
//   h += post_self_attn_layernorm(o_proj(...)),  h += post_mlp_layernorm(down(...))
// then logits = lm_head(final_norm(h)) for the rows that asked.
//
// A model may be one rank of a sharded layout (model/shard_plan.hpp): it runs its stage's layers
// with its share of the heads and FFN, all-reduces the attention and MLP outputs over its stage's
// tensor-parallel group (before the post norms, which need the whole sum), takes the hidden
// states of the previous stage instead of embedding, and gathers its vocabulary slice of the
// logits from its peers.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/comm/communicator.hpp"
#include "model/kv_cache.hpp"
#include "model/model_config.hpp"
#include "model/model_weights.hpp"
#include "model/shard_plan.hpp"
#include "model/step_batch.hpp"

namespace glm4::model {

/// The bytes of activations (its scratch) a glm4_model of rank `plan` holds for steps of up to
/// max_tokens tokens over up to max_seqs sequences (one logit row each), block tables aside (a
/// few KB). `config` is the whole model's. GPU memory plans reserve it next to the KV pool.
std::uint64_t activation_bytes(const model_config& config, const shard_plan& plan, std::int64_t max_tokens,
                               std::int64_t max_seqs);

class glm4_model {
 public:
  /// Checks every weight's shape against the config (std::invalid_argument naming the tensor)
  /// and moves the weights to the backend (zero copy on the CPU: host_weights must outlive the
  /// model there, which their owners see to).
  glm4_model(const model_config& config, const model_weights& host_weights, kernels::backend& backend);

  /// One rank of a sharded layout: `config` is the whole model's, `shard` comes from
  /// shard_weights(full, config, plan), and `tensor_parallel` joins the plan.tp_size ranks of the
  /// stage (null when tp_size is 1, or when the rank joins later through join_tensor_parallel).
  /// Throws std::invalid_argument as above, or when the group does not match the plan or cannot
  /// reach this backend's memory.
  glm4_model(const model_config& config, const shard_plan& plan, const model_weights& shard, kernels::backend& backend,
             std::shared_ptr<kernels::comm::communicator> tensor_parallel);
  /// Drops the backend's recordings, which name this model's buffers.
  ~glm4_model();
  glm4_model(const glm4_model&) = delete;
  glm4_model& operator=(const glm4_model&) = delete;

  /// The shapes this rank runs (its layers, heads and FFN share; the full vocabulary); a
  /// kv_cache for this rank is built from it.
  const model_config& config() const { return config_; }
  const shard_plan& plan() const { return plan_; }
  /// The stage's collective group; null when the model is not split over ranks.
  kernels::comm::communicator* tensor_parallel() const { return tensor_parallel_.get(); }
  /// Decode steps (one token per sequence, up to max_recorded_rows) run padded to a few shapes
  /// (model/decode_padding.hpp) through backend::run_recorded: CUDA graphs on a GPU, the same ops
  /// run directly elsewhere. Off by default.
  void record_decode_steps(bool on) { record_decode_ = on; }
  /// The type of the KV cache built for this rank (local_executor, sequence_runner): by default
  /// default_kv_cache_dtype (model/kv_cache.hpp) of its backend and stored weights.
  kernels::dtype kv_cache_dtype() const { return kv_cache_dtype_; }
  /// [model] kv_cache_dtype: F32, F16 or BF16 (std::invalid_argument otherwise), for caches built
  /// from now on.
  void set_kv_cache_dtype(kernels::dtype type);
  /// What its scratch holds now (activations and block tables), in bytes.
  std::uint64_t scratch_bytes() const;
  /// Takes the stage's group made after the model (backend::join_group with a ticket handed out
  /// by the head), before the first forward; throws as the constructor does for a group that
  /// does not fit, and std::logic_error when the rank has one already.
  void join_tensor_parallel(std::shared_ptr<kernels::comm::communicator> group);
  kernels::backend& backend() { return backend_; }

  /// Runs one step: embeds batch.token_ids (the first stage) or takes `hidden_in` (T, H) F32
  /// row-major from the previous stage, writes the keys and values of this stage's layers into
  /// `cache` at batch.slot_mapping, and returns on the device either the logits (R, V) F32 of
  /// batch.logit_rows (the last stage; valid on its tensor-parallel rank 0 only) or the hidden
  /// states (T, H) F32 for the next stage (on every rank). The tensor is scratch of this model, valid until the next forward. Throws
  /// std::invalid_argument for an inconsistent batch (see validate), a block size that is not
  /// the cache's or a hidden_in of the wrong size; kernels::comm::comm_aborted when a peer failed.
  const kernels::tensor& forward(const step_batch& batch, kv_cache& cache, std::span<const float> hidden_in = {});

  /// forward() of a last stage, then the logits copied to the host, row-major (R, V); empty on a
  /// tensor-parallel rank other than 0.
  std::vector<float> forward_logits(const step_batch& batch, kv_cache& cache, std::span<const float> hidden_in = {});

 private:
  // Activations of one step, allocated for the largest step so far and reused through views.
  struct scratch {
    std::int64_t token_capacity = 0, row_capacity = 0, seq_capacity = 0, table_capacity = 0;
    kernels::tensor ids, positions, slots;                   // I32 (T)
    kernels::tensor query_start, context_len, block_table;   // I32 (S + 1), (S), (S * M)
    kernels::tensor logit_rows;                              // I32 (R)
    kernels::tensor hidden, normed, q, k, v, attn, proj;     // F32 (T, width)
    kernels::tensor gate_up, ffn;                            // F32 (T, 2F), (T, F)
    kernels::tensor row_hidden, logits;                      // F32 (R, H), (R, V)
    kernels::tensor local_logits;                            // F32 (R, V / tp): this rank's vocabulary slice
  };

  /// Grows the scratch for `batch`; true when any buffer moved.
  bool reserve(const step_batch& batch);
  void run_layer(std::int64_t layer, std::int64_t num_tokens, const kernels::attention_batch& attention,
                 kv_cache& cache);
  void all_reduce(kernels::tensor& partial_sums);
  const kernels::tensor& compute_logits(const step_batch& batch, const kernels::tensor& hidden);

  model_config config_;  // local shapes (local_config)
  shard_plan plan_;
  std::shared_ptr<kernels::comm::communicator> tensor_parallel_;
  kernels::backend& backend_;
  model_weights weights_;  // device tensors
  scratch scratch_;
  kernels::tensor logits_view_, hidden_view_;
  bool record_decode_ = false;
  kernels::dtype kv_cache_dtype_ = kernels::dtype::f32;
  std::uint64_t recorded_cache_ = 0;  // kv_cache::identity() of the pool the backend's recordings write
  std::uint64_t identity_ = next_identity();  // process-unique: part of this model's recording keys

  static std::uint64_t next_identity();
};

}  // namespace glm4::model
