// Which tensors a GLM-4 checkpoint holds: the canonical weights, their shapes from the config,
// and each layout's tensor names (chatglm stores q, k, v fused, rows stacked).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model_config.hpp"
#include "model/model_weights.hpp"

namespace glm4::model {

enum class weight_field : std::uint8_t {
  tok_embeddings,
  attn_norm,
  wq,
  wk,
  wv,
  bq,
  bk,
  bv,
  wo,
  post_attn_norm,
  ffn_norm,
  w_gate_up,
  w_down,
  post_ffn_norm,
  final_norm,
  lm_head,
};

enum class weight_kind : std::uint8_t { embedding, linear, norm, bias };

weight_kind kind_of(weight_field field);

struct weight_id {
  weight_field field = weight_field::tok_embeddings;
  std::optional<std::int64_t> layer;  // set for per-layer fields

  bool operator==(const weight_id&) const = default;
};

/// "tok_embeddings", "layers.3.wq", ...: the field names of model_weights.hpp.
std::string canonical_name(const weight_id& id);

struct canonical_tensor {
  weight_id id;
  std::vector<std::int64_t> shape;
};

/// A tensor as a layout stores it: one canonical tensor, or several stacked along rows.
struct stored_tensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<canonical_tensor> parts;
};

/// Every tensor the config's layout stores, in a sensible file order; a tied lm_head is absent.
std::vector<stored_tensor> stored_tensors(const model_config& config);

/// Every canonical tensor the config calls for (a tied lm_head is absent).
std::vector<canonical_tensor> canonical_tensors(const model_config& config);

/// Tensors a layout may hold that carry nothing we need (chatglm's rotary inv_freq, a tied
/// lm_head): skipped without a warning.
bool is_ignored_tensor(const model_config& config, std::string_view name);

/// The field of `weights` for `id`; engages an optional field. `weights.layers` must already
/// hold the layer.
kernels::tensor& weight_slot(model_weights& weights, const weight_id& id);

/// The field of `weights` for `id`; nullptr when it is an optional field left empty or a layer
/// the weights lack.
const kernels::tensor* find_weight(const model_weights& weights, const weight_id& id);

/// Visits every canonical tensor the config calls for that `weights` holds (lm_head too when tied).
void for_each_weight(const model_config& config, const model_weights& weights,
                     const std::function<void(const weight_id&, const kernels::tensor&)>& visit);

}  // namespace glm4::model
