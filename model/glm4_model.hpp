// The GLM-4 forward pass over one mixed prefill/decode step, on any backend.
//
// Per layer (glm / chatglm layouts):
//   h += o_proj(attn(rope(q, k) of input_layernorm(h)))
//   h += down(swiglu(gate_up(post_attention_layernorm(h))))
// The glm4 layout (post_norms) also normalises each branch before the residual add:
//   h += post_self_attn_layernorm(o_proj(...)),  h += post_mlp_layernorm(down(...))
// then logits = lm_head(final_norm(h)) for the rows that asked.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/backend.hpp"
#include "model/kv_cache.hpp"
#include "model/model_config.hpp"
#include "model/model_weights.hpp"
#include "model/step_batch.hpp"

namespace glm4::model {

class glm4_model {
 public:
  /// Checks every weight's shape against the config (std::invalid_argument naming the tensor)
  /// and moves the weights to the backend (zero copy on the CPU: host_weights must outlive the
  /// model there, which their owners see to).
  glm4_model(const model_config& config, const model_weights& host_weights, kernels::backend& backend);

  const model_config& config() const { return config_; }
  kernels::backend& backend() { return backend_; }

  /// Runs one step: embeds batch.token_ids, writes their keys and values into `cache` at
  /// batch.slot_mapping, and returns the logits (R, V) F32 of batch.logit_rows on the device.
  /// The tensor is scratch of this model, valid until the next forward. Throws
  /// std::invalid_argument for an inconsistent batch (see validate) or a block size that is not
  /// the cache's.
  const kernels::tensor& forward(const step_batch& batch, kv_cache& cache);

  /// forward(), then the logits copied to the host, row-major (R, V).
  std::vector<float> forward_logits(const step_batch& batch, kv_cache& cache);

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
  };

  void reserve(const step_batch& batch);
  void run_layer(std::int64_t layer, std::int64_t num_tokens, const kernels::attention_batch& attention,
                 kv_cache& cache);

  model_config config_;
  kernels::backend& backend_;
  model_weights weights_;  // device tensors
  scratch scratch_;
  kernels::tensor logits_view_;
};

}  // namespace glm4::model
