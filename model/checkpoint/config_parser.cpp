#include "model/checkpoint/config_parser.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include "model/checkpoint/checkpoint_error.hpp"
#include "model/json/json_file.hpp"

namespace glm4::model {

namespace {

struct architecture_name {
  std::string_view name;
  checkpoint_layout layout;
};

constexpr architecture_name architectures[] = {
    {"ChatGLMModel", checkpoint_layout::chatglm},
    {"ChatGLMForConditionalGeneration", checkpoint_layout::chatglm},
    {"GlmForCausalLM", checkpoint_layout::glm},
    {"Glm4ForCausalLM", checkpoint_layout::glm4},
};

constexpr architecture_name model_types[] = {
    {"chatglm", checkpoint_layout::chatglm},
    {"glm", checkpoint_layout::glm},
    {"glm4", checkpoint_layout::glm4},
};

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw checkpoint_error(path.string() + ": cannot open file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

checkpoint_layout detect_layout(const json_fields& json) {
  std::string seen;
  if (const auto* list = json.find("architectures")) {
    if (!list->is_array()) json.fail("architectures", "expected an array of strings");
    for (const auto& entry : list->get_array()) {
      if (!entry.is_string()) json.fail("architectures", "expected an array of strings");
      for (const auto& known : architectures)
        if (entry.get_string() == known.name) return known.layout;
      seen += (seen.empty() ? "" : ", ") + std::string(entry.get_string());
    }
  }
  if (auto model_type = json.optional_string("model_type")) {
    for (const auto& known : model_types)
      if (*model_type == known.name) return known.layout;
    seen += (seen.empty() ? "model_type " : ", model_type ") + *model_type;
  }
  throw checkpoint_error(json.label() + ": unknown architecture (" + (seen.empty() ? "no \"architectures\" or \"model_type\"" : seen) +
                         "); supported: " + supported_architectures());
}

kernels::dtype parse_torch_dtype(const json_fields& json) {
  for (std::string_view key : {"torch_dtype", "dtype"}) {
    auto name = json.optional_string(key);
    if (!name) continue;
    if (*name == "bfloat16") return kernels::dtype::bf16;
    if (*name == "float16") return kernels::dtype::f16;
    if (*name == "float32") return kernels::dtype::f32;
    json.fail(key, "unsupported value \"" + *name + "\" (supported: bfloat16, float16, float32)");
  }
  return kernels::dtype::bf16;
}

void require_flag(const json_fields& json, std::string_view key, bool fallback, bool wanted, const std::string& why) {
  if (json.optional_bool(key).value_or(fallback) != wanted)
    json.fail(key, std::string("unsupported value ") + (wanted ? "false" : "true") + " (" + why + ")");
}

void require_positive(const json_fields& json, std::string_view key, std::int64_t value) {
  if (value <= 0) json.fail(key, "must be positive, got " + std::to_string(value));
}

model_config parse_chatglm(const json_fields& json) {
  if (json.has("vision_config")) json.fail("vision_config", "GLM-4V (vision) checkpoints are not supported");
  require_flag(json, "rmsnorm", true, true, "only RMSNorm models are supported");
  require_flag(json, "add_bias_linear", false, false, "only the QKV projection may have a bias");
  require_flag(json, "apply_residual_connection_post_layernorm", false, false, "residuals are taken before the norm");
  require_flag(json, "post_layer_norm", true, true, "the final RMSNorm is required");
  require_flag(json, "original_rope", true, true, "only the original interleaved RoPE is supported");

  model_config config;
  config.layout = checkpoint_layout::chatglm;
  config.num_layers = json.require_int(json.has("num_hidden_layers") && !json.has("num_layers") ? "num_hidden_layers" : "num_layers");
  config.hidden_size = json.require_int("hidden_size");
  config.intermediate_size = json.require_int("ffn_hidden_size");
  config.num_heads = json.require_int("num_attention_heads");
  require_positive(json, "num_attention_heads", config.num_heads);
  config.head_dim = json.optional_int("kv_channels").value_or(config.hidden_size / config.num_heads);
  config.num_kv_heads = config.num_heads;
  if (json.optional_bool("multi_query_attention").value_or(false))
    config.num_kv_heads = json.require_int("multi_query_group_num");
  config.vocab_size = json.require_int(json.has("vocab_size") && !json.has("padded_vocab_size") ? "vocab_size" : "padded_vocab_size");
  config.rms_norm_eps = json.optional_number("layernorm_epsilon").value_or(1e-5);
  const double rope_ratio = json.optional_number("rope_ratio").value_or(1.0);
  if (!(rope_ratio > 0)) json.fail("rope_ratio", "must be positive");
  config.rope_theta = 10000.0 * rope_ratio;
  config.rotary_dim = config.head_dim / 2;
  config.max_position_embeddings = json.optional_int("seq_length").value_or(2048);
  config.qkv_bias = json.optional_bool("add_qkv_bias").value_or(false);
  config.post_norms = false;
  config.tie_word_embeddings = json.optional_bool("tie_word_embeddings").value_or(false);
  config.torch_dtype = parse_torch_dtype(json);
  return config;
}

model_config parse_glm(const json_fields& json, checkpoint_layout layout) {
  if (auto act = json.optional_string("hidden_act"); act && *act != "silu")
    json.fail("hidden_act", "unsupported value \"" + *act + "\" (GLM-4 uses silu)");
  if (const auto* scaling = json.find("rope_scaling")) {
    const auto* object = scaling->if_object();
    const auto* type = object ? object->if_contains("rope_type") : nullptr;
    if (!type || !type->is_string() || type->get_string() != "default")
      json.fail("rope_scaling", "RoPE scaling is not supported, got " + boost::json::serialize(*scaling));
  }
  // transformers >= 5 moves rope_theta and partial_rotary_factor into "rope_parameters".
  std::optional<json_fields> rope;
  if (const auto* parameters = json.find("rope_parameters"))
    rope.emplace(*parameters, json.label() + " rope_parameters", throw_checkpoint_error);

  model_config config;
  config.layout = layout;
  config.vocab_size = json.require_int("vocab_size");
  config.hidden_size = json.require_int("hidden_size");
  config.intermediate_size = json.require_int("intermediate_size");
  config.num_layers = json.require_int("num_hidden_layers");
  config.num_heads = json.require_int("num_attention_heads");
  require_positive(json, "num_attention_heads", config.num_heads);
  config.num_kv_heads = json.optional_int("num_key_value_heads").value_or(config.num_heads);
  config.head_dim = json.optional_int("head_dim").value_or(config.hidden_size / config.num_heads);

  std::optional<double> factor = json.optional_number("partial_rotary_factor");
  std::optional<double> theta = json.optional_number("rope_theta");
  if (rope) {
    if (!factor) factor = rope->optional_number("partial_rotary_factor");
    if (!theta) theta = rope->optional_number("rope_theta");
  }
  const double rotary = static_cast<double>(config.head_dim) * factor.value_or(0.5);
  if (!(factor.value_or(0.5) > 0) || rotary != std::floor(rotary))
    json.fail("partial_rotary_factor", "must give a whole number of rotary dims of head_dim " + std::to_string(config.head_dim));
  config.rotary_dim = static_cast<std::int64_t>(rotary);
  config.rope_theta = theta.value_or(10000.0);
  if (!(config.rope_theta > 0)) json.fail("rope_theta", "must be positive");
  config.rms_norm_eps = json.optional_number("rms_norm_eps").value_or(1.5625e-07);
  config.qkv_bias = json.optional_bool("attention_bias").value_or(true);
  config.post_norms = layout == checkpoint_layout::glm4;
  config.tie_word_embeddings = json.optional_bool("tie_word_embeddings").value_or(false);
  config.max_position_embeddings = json.optional_int("max_position_embeddings").value_or(131072);
  config.torch_dtype = parse_torch_dtype(json);
  return config;
}

// Each check names the key a user would fix, in that layout's spelling.
void validate(const model_config& config, const json_fields& json) {
  const bool chatglm = config.layout == checkpoint_layout::chatglm;
  require_positive(json, chatglm ? "num_layers" : "num_hidden_layers", config.num_layers);
  require_positive(json, "hidden_size", config.hidden_size);
  require_positive(json, chatglm ? "ffn_hidden_size" : "intermediate_size", config.intermediate_size);
  require_positive(json, chatglm ? "padded_vocab_size" : "vocab_size", config.vocab_size);
  const char* kv_key = chatglm ? "multi_query_group_num" : "num_key_value_heads";
  require_positive(json, kv_key, config.num_kv_heads);
  if (config.num_heads % config.num_kv_heads != 0)
    json.fail(kv_key, std::to_string(config.num_kv_heads) + " does not divide num_attention_heads " + std::to_string(config.num_heads));
  const char* head_key = chatglm ? "kv_channels" : "head_dim";
  require_positive(json, head_key, config.head_dim);
  if (config.rotary_dim <= 0 || config.rotary_dim % 2 != 0 || config.rotary_dim > config.head_dim)
    json.fail(chatglm ? "kv_channels" : "partial_rotary_factor",
              "rotary dims " + std::to_string(config.rotary_dim) + " must be even and within head_dim " + std::to_string(config.head_dim));
  if (!(config.rms_norm_eps > 0)) json.fail(chatglm ? "layernorm_epsilon" : "rms_norm_eps", "must be positive");
  require_positive(json, chatglm ? "seq_length" : "max_position_embeddings", config.max_position_embeddings);
}

std::vector<std::int32_t> parse_token_ids(const json_fields& json, std::string_view key) {
  const auto* value = json.find(key);
  std::vector<std::int32_t> ids;
  auto add = [&](const boost::json::value& entry) {
    const auto* number = entry.if_int64();  // Boost.JSON stores every integer below 2^63 as int64
    if (!number || *number < 0 || *number > INT32_MAX)
      json.fail(key, "expected a token id or a list of token ids, got " + boost::json::serialize(entry));
    ids.push_back(static_cast<std::int32_t>(*number));
  };
  if (!value) return ids;
  if (const auto* list = value->if_array()) {
    for (const auto& entry : *list) add(entry);
    if (ids.empty()) json.fail(key, "the list of token ids is empty");
  } else {
    add(*value);
  }
  return ids;
}

}  // namespace

std::string supported_architectures() {
  std::string text;
  for (const auto& known : architectures) {
    if (!text.empty()) text += ", ";
    text += known.name;
  }
  text += " (model_type";
  for (const auto& known : model_types) {
    text += ' ';
    text += known.name;
  }
  return text + ")";
}

model_config parse_model_config(std::string_view json_text, const std::string& label) {
  const auto value = parse_json_text(json_text, label, throw_checkpoint_error);
  const json_fields json(value, label, throw_checkpoint_error);
  const checkpoint_layout layout = detect_layout(json);
  model_config config = layout == checkpoint_layout::chatglm ? parse_chatglm(json) : parse_glm(json, layout);
  validate(config, json);
  return config;
}

model_config load_model_config(const std::filesystem::path& dir) {
  const auto path = dir / "config.json";
  if (!std::filesystem::exists(path)) throw checkpoint_error(path.string() + ": not found (is " + dir.string() + " a model directory?)");
  return parse_model_config(read_text(path), path.string());
}

generation_config parse_generation_config(std::string_view json_text, const std::string& label,
                                          std::string_view fallback_json, const std::string& fallback_label) {
  generation_config generation;
  auto read = [&](std::string_view text, const std::string& name) {
    const auto value = parse_json_text(text, name, throw_checkpoint_error);
    const json_fields json(value, name, throw_checkpoint_error);
    if (generation.eos_token_ids.empty()) generation.eos_token_ids = parse_token_ids(json, "eos_token_id");
    if (!generation.pad_token_id) {
      auto pad = parse_token_ids(json, "pad_token_id");
      if (pad.size() > 1) json.fail("pad_token_id", "expected one token id");
      if (!pad.empty()) generation.pad_token_id = pad.front();
    }
  };
  if (!json_text.empty()) read(json_text, label);
  if ((generation.eos_token_ids.empty() || !generation.pad_token_id) && !fallback_json.empty()) read(fallback_json, fallback_label);
  if (generation.eos_token_ids.empty()) {
    std::string where = json_text.empty() ? fallback_label : label + (fallback_json.empty() ? "" : " or " + fallback_label);
    throw checkpoint_error(where + ": key \"eos_token_id\": missing (the ids that end a reply are required)");
  }
  return generation;
}

generation_config load_generation_config(const std::filesystem::path& dir) {
  const auto path = dir / "generation_config.json";
  const auto config_path = dir / "config.json";
  const std::string text = std::filesystem::exists(path) ? read_text(path) : std::string();
  const std::string fallback = std::filesystem::exists(config_path) ? read_text(config_path) : std::string();
  if (text.empty() && fallback.empty())
    throw checkpoint_error(path.string() + ": not found, and no " + config_path.string() + " to fall back to");
  return parse_generation_config(text, path.string(), fallback, config_path.string());
}

}  // namespace glm4::model
