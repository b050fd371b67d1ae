// The canonical GLM-4 model description every checkpoint layout is read into.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dtype.hpp"

namespace glm4::model {

/// The three checkpoint layouts of the family, told apart by config.json.
enum class checkpoint_layout {
  chatglm,  // THUDM glm-4-9b(-chat): ChatGLMModel, fused query_key_value, rope_ratio
  glm,      // transformers GlmForCausalLM (glm-4-9b-chat-hf)
  glm4,     // transformers Glm4ForCausalLM (GLM-4-0414): four RMSNorms per layer
};

std::string_view layout_name(checkpoint_layout layout);
std::optional<checkpoint_layout> parse_layout(std::string_view name);

struct model_config {
  checkpoint_layout layout = checkpoint_layout::glm;
  std::int64_t vocab_size = 0;          // rows of the embedding and LM head (padded_vocab_size)
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;   // F; gate_up has 2F rows
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t rotary_dim = 0;          // leading dims of each head that rotate (head_dim / 2 in GLM-4)
  double rope_theta = 10000.0;          // chatglm: 10000 * rope_ratio
  double rms_norm_eps = 1.5625e-07;
  bool qkv_bias = true;
  bool post_norms = false;              // glm4 layout: post_self_attn and post_mlp norms
  bool tie_word_embeddings = false;
  std::int64_t max_position_embeddings = 0;
  kernels::dtype torch_dtype = kernels::dtype::bf16;
};

/// generation_config.json (falling back to config.json): the ids that end a reply.
struct generation_config {
  std::vector<std::int32_t> eos_token_ids;
  std::optional<std::int32_t> pad_token_id;
};

}  // namespace glm4::model
