#include "model/checkpoint/weight_layout.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "model/checkpoint/make_model.hpp"

using namespace glm4::model;

namespace {

const stored_tensor& named(const std::vector<stored_tensor>& stored, const std::string& name) {
  auto it = std::find_if(stored.begin(), stored.end(), [&](const auto& s) { return s.name == name; });
  REQUIRE(it != stored.end());
  return *it;
}

using shape = std::vector<std::int64_t>;

}  // namespace

TEST_CASE("weight layout: glm names and shapes", "[layout]") {
  const auto config = preset_config("glm-4-9b", checkpoint_layout::glm).value();
  const auto stored = stored_tensors(config);
  CHECK(stored.size() == 1 + 40 * 11 + 2);
  CHECK(named(stored, "model.embed_tokens.weight").shape == shape{151552, 4096});
  CHECK(named(stored, "model.layers.39.self_attn.q_proj.weight").shape == shape{4096, 4096});
  CHECK(named(stored, "model.layers.0.self_attn.k_proj.weight").shape == shape{256, 4096});
  CHECK(named(stored, "model.layers.0.self_attn.v_proj.bias").shape == shape{256});
  CHECK(named(stored, "model.layers.0.mlp.gate_up_proj.weight").shape == shape{27392, 4096});
  CHECK(named(stored, "model.layers.0.mlp.down_proj.weight").shape == shape{4096, 13696});
  CHECK(named(stored, "model.norm.weight").shape == shape{4096});
  CHECK(named(stored, "lm_head.weight").parts.front().id == weight_id{weight_field::lm_head, std::nullopt});
  CHECK(canonical_name(named(stored, "model.layers.7.post_attention_layernorm.weight").parts.front().id) == "layers.7.ffn_norm");
}

TEST_CASE("weight layout: glm4 adds the two post norms per layer", "[layout]") {
  const auto stored = stored_tensors(preset_config("tiny", checkpoint_layout::glm4).value());
  CHECK(stored.size() == 1 + 4 * 13 + 2);
  CHECK(canonical_name(named(stored, "model.layers.3.post_self_attn_layernorm.weight").parts.front().id) == "layers.3.post_attn_norm");
  CHECK(canonical_name(named(stored, "model.layers.3.post_mlp_layernorm.weight").parts.front().id) == "layers.3.post_ffn_norm");
}

TEST_CASE("weight layout: chatglm fuses q, k, v rows in that order", "[layout]") {
  const auto config = preset_config("glm-4-9b", checkpoint_layout::chatglm).value();
  const auto stored = stored_tensors(config);
  CHECK(stored.size() == 1 + 40 * 7 + 2);
  const auto& qkv = named(stored, "transformer.encoder.layers.5.self_attention.query_key_value.weight");
  CHECK(qkv.shape == shape{4608, 4096});
  REQUIRE(qkv.parts.size() == 3);
  CHECK(canonical_name(qkv.parts[0].id) == "layers.5.wq");
  CHECK(canonical_name(qkv.parts[1].id) == "layers.5.wk");
  CHECK(canonical_name(qkv.parts[2].id) == "layers.5.wv");
  CHECK(named(stored, "transformer.encoder.layers.5.self_attention.query_key_value.bias").shape == shape{4608});
  CHECK(named(stored, "transformer.encoder.layers.0.mlp.dense_h_to_4h.weight").shape == shape{27392, 4096});
  CHECK(named(stored, "transformer.output_layer.weight").shape == shape{151552, 4096});
  CHECK(is_ignored_tensor(config, "transformer.rotary_pos_emb.inv_freq"));
}

TEST_CASE("weight layout: the same canonical tensors in glm and chatglm; none without bias or when tied", "[layout]") {
  auto glm = preset_config("tiny", checkpoint_layout::glm).value();
  auto chatglm = preset_config("tiny", checkpoint_layout::chatglm).value();
  std::set<std::string> from_glm, from_chatglm;
  for (const auto& t : canonical_tensors(glm)) from_glm.insert(canonical_name(t.id));
  for (const auto& t : canonical_tensors(chatglm)) from_chatglm.insert(canonical_name(t.id));
  CHECK(from_glm == from_chatglm);
  CHECK(from_glm.size() == 1 + 4 * 11 + 2);

  glm.qkv_bias = false;
  glm.tie_word_embeddings = true;
  const auto names = canonical_tensors(glm);
  CHECK(std::none_of(names.begin(), names.end(), [](const auto& t) { return t.id.field == weight_field::bq || t.id.field == weight_field::lm_head; }));
  CHECK(is_ignored_tensor(glm, "lm_head.weight"));
}

TEST_CASE("weight layout: slots engage optional fields and find_weight sees them", "[layout]") {
  model_weights weights;
  weights.layers.resize(2);
  const weight_id bias{weight_field::bk, 1};
  CHECK(find_weight(weights, bias) == nullptr);
  weight_slot(weights, bias).shape = {8};
  REQUIRE(weights.layers[1].bk);
  CHECK(find_weight(weights, bias) == &*weights.layers[1].bk);
  CHECK(&weight_slot(weights, {weight_field::lm_head, std::nullopt}) == &weights.lm_head);
  CHECK_THROWS_AS(weight_slot(weights, {weight_field::wq, 2}), std::out_of_range);
}
