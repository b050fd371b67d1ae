#include "model/checkpoint/weight_layout.hpp"

#include <stdexcept>

namespace glm4::model {

namespace {

using shape_t = std::vector<std::int64_t>;

std::string_view field_name(weight_field field) {
  switch (field) {
    case weight_field::tok_embeddings: return "tok_embeddings";
    case weight_field::attn_norm: return "attn_norm";
    case weight_field::wq: return "wq";
    case weight_field::wk: return "wk";
    case weight_field::wv: return "wv";
    case weight_field::bq: return "bq";
    case weight_field::bk: return "bk";
    case weight_field::bv: return "bv";
    case weight_field::wo: return "wo";
    case weight_field::post_attn_norm: return "post_attn_norm";
    case weight_field::ffn_norm: return "ffn_norm";
    case weight_field::w_gate_up: return "w_gate_up";
    case weight_field::w_down: return "w_down";
    case weight_field::post_ffn_norm: return "post_ffn_norm";
    case weight_field::final_norm: return "final_norm";
    case weight_field::lm_head: return "lm_head";
  }
  return "?";
}

stored_tensor single(std::string name, weight_field field, std::optional<std::int64_t> layer, shape_t shape) {
  return {std::move(name), shape, {{{field, layer}, shape}}};
}

stored_tensor stacked(std::string name, std::vector<canonical_tensor> parts) {
  shape_t shape = parts.front().shape;
  shape[0] = 0;
  for (const auto& part : parts) shape[0] += part.shape[0];
  return {std::move(name), std::move(shape), std::move(parts)};
}

// Shapes of one layer's canonical tensors, by field.
struct layer_shapes {
  std::int64_t hidden, q_rows, kv_rows, ffn;

  explicit layer_shapes(const model_config& c)
      : hidden(c.hidden_size), q_rows(c.num_heads * c.head_dim), kv_rows(c.num_kv_heads * c.head_dim), ffn(c.intermediate_size) {}

  shape_t of(weight_field field) const {
    switch (field) {
      case weight_field::wq: return {q_rows, hidden};
      case weight_field::wk:
      case weight_field::wv: return {kv_rows, hidden};
      case weight_field::bq: return {q_rows};
      case weight_field::bk:
      case weight_field::bv: return {kv_rows};
      case weight_field::wo: return {hidden, q_rows};
      case weight_field::w_gate_up: return {2 * ffn, hidden};
      case weight_field::w_down: return {hidden, ffn};
      default: return {hidden};
    }
  }
};

void add_hf_layer(const model_config& config, std::int64_t layer, std::vector<stored_tensor>& out) {
  const layer_shapes shapes(config);
  const std::string prefix = "model.layers." + std::to_string(layer) + ".";
  auto add = [&](const std::string& name, weight_field field) { out.push_back(single(prefix + name, field, layer, shapes.of(field))); };
  add("input_layernorm.weight", weight_field::attn_norm);
  add("self_attn.q_proj.weight", weight_field::wq);
  add("self_attn.k_proj.weight", weight_field::wk);
  add("self_attn.v_proj.weight", weight_field::wv);
  if (config.qkv_bias) {
    add("self_attn.q_proj.bias", weight_field::bq);
    add("self_attn.k_proj.bias", weight_field::bk);
    add("self_attn.v_proj.bias", weight_field::bv);
  }
  add("self_attn.o_proj.weight", weight_field::wo);
  if (config.post_norms) add("post_self_attn_layernorm.weight", weight_field::post_attn_norm);
  add("post_attention_layernorm.weight", weight_field::ffn_norm);
  add("mlp.gate_up_proj.weight", weight_field::w_gate_up);
  add("mlp.down_proj.weight", weight_field::w_down);
  if (config.post_norms) add("post_mlp_layernorm.weight", weight_field::post_ffn_norm);
}

void add_chatglm_layer(const model_config& config, std::int64_t layer, std::vector<stored_tensor>& out) {
  const layer_shapes shapes(config);
  const std::string prefix = "transformer.encoder.layers." + std::to_string(layer) + ".";
  auto part = [&](weight_field field) { return canonical_tensor{{field, layer}, shapes.of(field)}; };
  auto add = [&](const std::string& name, weight_field field) { out.push_back(single(prefix + name, field, layer, shapes.of(field))); };
  add("input_layernorm.weight", weight_field::attn_norm);
  // Fused rows: q, then k, then v.
  out.push_back(stacked(prefix + "self_attention.query_key_value.weight",
                        {part(weight_field::wq), part(weight_field::wk), part(weight_field::wv)}));
  if (config.qkv_bias)
    out.push_back(stacked(prefix + "self_attention.query_key_value.bias",
                          {part(weight_field::bq), part(weight_field::bk), part(weight_field::bv)}));
  add("self_attention.dense.weight", weight_field::wo);
  add("post_attention_layernorm.weight", weight_field::ffn_norm);
  add("mlp.dense_h_to_4h.weight", weight_field::w_gate_up);
  add("mlp.dense_4h_to_h.weight", weight_field::w_down);
}

}  // namespace

weight_kind kind_of(weight_field field) {
  switch (field) {
    case weight_field::tok_embeddings: return weight_kind::embedding;
    case weight_field::bq:
    case weight_field::bk:
    case weight_field::bv: return weight_kind::bias;
    case weight_field::attn_norm:
    case weight_field::post_attn_norm:
    case weight_field::ffn_norm:
    case weight_field::post_ffn_norm:
    case weight_field::final_norm: return weight_kind::norm;
    default: return weight_kind::linear;
  }
}

std::string canonical_name(const weight_id& id) {
  if (!id.layer) return std::string(field_name(id.field));
  return "layers." + std::to_string(*id.layer) + "." + std::string(field_name(id.field));
}

std::vector<stored_tensor> stored_tensors(const model_config& config) {
  const bool chatglm = config.layout == checkpoint_layout::chatglm;
  const shape_t vocab_shape{config.vocab_size, config.hidden_size};
  const shape_t norm_shape{config.hidden_size};
  std::vector<stored_tensor> out;
  out.push_back(single(chatglm ? "transformer.embedding.word_embeddings.weight" : "model.embed_tokens.weight",
                       weight_field::tok_embeddings, std::nullopt, vocab_shape));
  for (std::int64_t layer = 0; layer < config.num_layers; ++layer) {
    if (chatglm) {
      add_chatglm_layer(config, layer, out);
    } else {
      add_hf_layer(config, layer, out);
    }
  }
  out.push_back(single(chatglm ? "transformer.encoder.final_layernorm.weight" : "model.norm.weight", weight_field::final_norm,
                       std::nullopt, norm_shape));
  if (!config.tie_word_embeddings)
    out.push_back(single(chatglm ? "transformer.output_layer.weight" : "lm_head.weight", weight_field::lm_head, std::nullopt,
                         vocab_shape));
  return out;
}

std::vector<canonical_tensor> canonical_tensors(const model_config& config) {
  std::vector<canonical_tensor> out;
  for (auto& stored : stored_tensors(config))
    for (auto& part : stored.parts) out.push_back(std::move(part));
  return out;
}

bool is_ignored_tensor(const model_config& config, std::string_view name) {
  if (config.layout == checkpoint_layout::chatglm) {
    if (name == "transformer.rotary_pos_emb.inv_freq") return true;
    return config.tie_word_embeddings && name == "transformer.output_layer.weight";
  }
  return config.tie_word_embeddings && name == "lm_head.weight";
}

kernels::tensor& weight_slot(model_weights& weights, const weight_id& id) {
  switch (id.field) {
    case weight_field::tok_embeddings: return weights.tok_embeddings;
    case weight_field::final_norm: return weights.final_norm;
    case weight_field::lm_head: return weights.lm_head;
    default: break;
  }
  if (!id.layer || *id.layer < 0 || static_cast<std::size_t>(*id.layer) >= weights.layers.size())
    throw std::out_of_range("weight_slot: " + canonical_name(id) + " is outside the model's layers");
  auto& layer = weights.layers[static_cast<std::size_t>(*id.layer)];
  auto engage = [](std::optional<kernels::tensor>& slot) -> kernels::tensor& { return slot ? *slot : slot.emplace(); };
  switch (id.field) {
    case weight_field::attn_norm: return layer.attn_norm;
    case weight_field::wq: return layer.wq;
    case weight_field::wk: return layer.wk;
    case weight_field::wv: return layer.wv;
    case weight_field::bq: return engage(layer.bq);
    case weight_field::bk: return engage(layer.bk);
    case weight_field::bv: return engage(layer.bv);
    case weight_field::wo: return layer.wo;
    case weight_field::post_attn_norm: return engage(layer.post_attn_norm);
    case weight_field::ffn_norm: return layer.ffn_norm;
    case weight_field::w_gate_up: return layer.w_gate_up;
    case weight_field::w_down: return layer.w_down;
    case weight_field::post_ffn_norm: return engage(layer.post_ffn_norm);
    default: break;
  }
  throw std::logic_error("weight_slot: unhandled field " + canonical_name(id));
}

const kernels::tensor* find_weight(const model_weights& weights, const weight_id& id) {
  switch (id.field) {
    case weight_field::tok_embeddings: return &weights.tok_embeddings;
    case weight_field::final_norm: return &weights.final_norm;
    case weight_field::lm_head: return &weights.lm_head;
    default: break;
  }
  if (!id.layer || *id.layer < 0 || static_cast<std::size_t>(*id.layer) >= weights.layers.size()) return nullptr;
  const auto& layer = weights.layers[static_cast<std::size_t>(*id.layer)];
  auto engaged = [](const std::optional<kernels::tensor>& slot) { return slot ? &*slot : nullptr; };
  switch (id.field) {
    case weight_field::attn_norm: return &layer.attn_norm;
    case weight_field::wq: return &layer.wq;
    case weight_field::wk: return &layer.wk;
    case weight_field::wv: return &layer.wv;
    case weight_field::bq: return engaged(layer.bq);
    case weight_field::bk: return engaged(layer.bk);
    case weight_field::bv: return engaged(layer.bv);
    case weight_field::wo: return &layer.wo;
    case weight_field::post_attn_norm: return engaged(layer.post_attn_norm);
    case weight_field::ffn_norm: return &layer.ffn_norm;
    case weight_field::w_gate_up: return &layer.w_gate_up;
    case weight_field::w_down: return &layer.w_down;
    case weight_field::post_ffn_norm: return engaged(layer.post_ffn_norm);
    default: return nullptr;
  }
}

void for_each_weight(const model_config& config, const model_weights& weights,
                     const std::function<void(const weight_id&, const kernels::tensor&)>& visit) {
  for (const auto& tensor : canonical_tensors(config))
    if (const auto* t = find_weight(weights, tensor.id)) visit(tensor.id, *t);
  if (config.tie_word_embeddings) visit({weight_field::lm_head, std::nullopt}, weights.lm_head);
}

}  // namespace glm4::model
