// Canonical GLM-4 weights: every layout's tensor names map onto these fields.
#pragma once

#include <optional>
#include <vector>

#include "kernels/tensor.hpp"

namespace glm4::model {

/// One decoder layer. Shapes: H hidden, Hq/Hkv heads, D head dim, F FFN size.
/// Linear weights are (out, in), as torch stores them.
struct layer_weights {
  kernels::tensor attn_norm;                      // (H)       input_layernorm
  kernels::tensor wq;                             // (Hq*D, H)
  kernels::tensor wk;                             // (Hkv*D, H)
  kernels::tensor wv;                             // (Hkv*D, H)
  std::optional<kernels::tensor> bq, bk, bv;      // (Hq*D), (Hkv*D), (Hkv*D) when qkv_bias
  kernels::tensor wo;                             // (H, Hq*D) no bias
  std::optional<kernels::tensor> post_attn_norm;  // (H) glm4 layout: post_self_attn_layernorm
  kernels::tensor ffn_norm;                       // (H)       post_attention_layernorm
  kernels::tensor w_gate_up;                      // (2F, H)   gate rows first, then up rows
  kernels::tensor w_down;                         // (H, F)
  std::optional<kernels::tensor> post_ffn_norm;   // (H) glm4 layout: post_mlp_layernorm
};

struct model_weights {
  kernels::tensor tok_embeddings;  // (V, H)
  std::vector<layer_weights> layers;
  kernels::tensor final_norm;      // (H)
  kernels::tensor lm_head;         // (V, H); the embedding itself when tied
};

}  // namespace glm4::model
