#include "model/checkpoint/config_writer.hpp"

#include <cmath>

#include <boost/json.hpp>

#include "model/checkpoint/checkpoint_error.hpp"
#include "model/json/json_file.hpp"

namespace glm4::model {

namespace {

// Whole numbers are written as integers (500, not 5E2), as the Python exporters do.
boost::json::value number(double value) {
  if (value == std::floor(value) && std::fabs(value) < 9.0e15) return static_cast<std::int64_t>(value);
  return value;
}

std::string_view torch_dtype_name(kernels::dtype type) {
  switch (type) {
    case kernels::dtype::f32: return "float32";
    case kernels::dtype::f16: return "float16";
    default: return "bfloat16";
  }
}

boost::json::value token_ids(const generation_config& generation) {
  boost::json::array ids;
  for (auto id : generation.eos_token_ids) ids.push_back(id);
  if (ids.size() == 1) return ids.front();
  return ids;
}

void add_token_ids(boost::json::object& json, const generation_config& generation) {
  json["eos_token_id"] = token_ids(generation);
  if (generation.pad_token_id) json["pad_token_id"] = *generation.pad_token_id;
}

void check_expressible(const model_config& config) {
  const std::string layout(layout_name(config.layout));
  if (config.layout == checkpoint_layout::chatglm && config.rotary_dim * 2 != config.head_dim)
    throw checkpoint_error("config.json for the chatglm layout: rotary dims " + std::to_string(config.rotary_dim) +
                           " must be half of head_dim " + std::to_string(config.head_dim));
  if (config.post_norms != (config.layout == checkpoint_layout::glm4))
    throw checkpoint_error("config.json for the " + layout + " layout: post norms are " + (config.post_norms ? "on" : "off") +
                           ", which only the " + (config.post_norms ? "glm4" : "chatglm and glm") + " layouts express");
}

boost::json::object chatglm_json(const model_config& config) {
  boost::json::object json;
  json["architectures"] = boost::json::array{"ChatGLMModel"};
  json["model_type"] = "chatglm";
  json["add_bias_linear"] = false;
  json["add_qkv_bias"] = config.qkv_bias;
  json["apply_query_key_layer_scaling"] = true;
  json["apply_residual_connection_post_layernorm"] = false;
  json["attention_dropout"] = 0.0;
  json["attention_softmax_in_fp32"] = true;
  json["ffn_hidden_size"] = config.intermediate_size;
  json["fp32_residual_connection"] = false;
  json["hidden_dropout"] = 0.0;
  json["hidden_size"] = config.hidden_size;
  json["kv_channels"] = config.head_dim;
  json["layernorm_epsilon"] = config.rms_norm_eps;
  json["multi_query_attention"] = config.num_kv_heads != config.num_heads;
  json["multi_query_group_num"] = config.num_kv_heads;
  json["num_attention_heads"] = config.num_heads;
  json["num_hidden_layers"] = config.num_layers;
  json["num_layers"] = config.num_layers;
  json["original_rope"] = true;
  json["padded_vocab_size"] = config.vocab_size;
  json["post_layer_norm"] = true;
  json["rmsnorm"] = true;
  json["rope_ratio"] = number(config.rope_theta / 10000.0);
  json["seq_length"] = config.max_position_embeddings;
  json["tie_word_embeddings"] = config.tie_word_embeddings;
  json["torch_dtype"] = torch_dtype_name(config.torch_dtype);
  json["use_cache"] = true;
  json["vocab_size"] = config.vocab_size;
  return json;
}

boost::json::object hf_json(const model_config& config) {
  const bool glm4 = config.layout == checkpoint_layout::glm4;
  boost::json::object json;
  json["architectures"] = boost::json::array{glm4 ? "Glm4ForCausalLM" : "GlmForCausalLM"};
  json["model_type"] = glm4 ? "glm4" : "glm";
  json["attention_bias"] = config.qkv_bias;
  json["attention_dropout"] = 0.0;
  json["head_dim"] = config.head_dim;
  json["hidden_act"] = "silu";
  json["hidden_size"] = config.hidden_size;
  json["initializer_range"] = 0.02;
  json["intermediate_size"] = config.intermediate_size;
  json["max_position_embeddings"] = config.max_position_embeddings;
  json["num_attention_heads"] = config.num_heads;
  json["num_hidden_layers"] = config.num_layers;
  json["num_key_value_heads"] = config.num_kv_heads;
  json["partial_rotary_factor"] = number(static_cast<double>(config.rotary_dim) / static_cast<double>(config.head_dim));
  json["rms_norm_eps"] = config.rms_norm_eps;
  json["rope_theta"] = number(config.rope_theta);
  json["tie_word_embeddings"] = config.tie_word_embeddings;
  json["torch_dtype"] = torch_dtype_name(config.torch_dtype);
  json["use_cache"] = true;
  json["vocab_size"] = config.vocab_size;
  return json;
}

}  // namespace

std::string config_json_text(const model_config& config, const generation_config& generation) {
  check_expressible(config);
  boost::json::object json = config.layout == checkpoint_layout::chatglm ? chatglm_json(config) : hf_json(config);
  add_token_ids(json, generation);
  return pretty_json(json);
}

std::string generation_config_json_text(const model_config& config, const generation_config& generation) {
  boost::json::object json;
  add_token_ids(json, generation);
  json["do_sample"] = true;
  json["temperature"] = 0.8;
  json["top_p"] = 0.8;
  json["max_length"] = config.max_position_embeddings;
  return pretty_json(json);
}

}  // namespace glm4::model
