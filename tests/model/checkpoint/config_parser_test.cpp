#include "model/checkpoint/config_parser.hpp"

#include <catch2/catch.hpp>

#include "model/checkpoint/checkpoint_error.hpp"
#include "tests/model/checkpoint/test_support.hpp"

using namespace glm4::model;
using Catch::Matchers::Contains;
using glm4::kernels::dtype;
namespace fs = std::filesystem;

namespace {

// THUDM/glm-4-9b-chat config.json (auto_map and dropout keys trimmed).
constexpr const char* chatglm_9b = R"({
  "architectures": ["ChatGLMModel"],
  "model_type": "chatglm",
  "add_bias_linear": false,
  "add_qkv_bias": true,
  "apply_query_key_layer_scaling": true,
  "apply_residual_connection_post_layernorm": false,
  "attention_softmax_in_fp32": true,
  "eos_token_id": [151329, 151336, 151338],
  "ffn_hidden_size": 13696,
  "fp32_residual_connection": false,
  "hidden_size": 4096,
  "kv_channels": 128,
  "layernorm_epsilon": 1.5625e-07,
  "multi_query_attention": true,
  "multi_query_group_num": 2,
  "num_attention_heads": 32,
  "num_hidden_layers": 40,
  "num_layers": 40,
  "original_rope": true,
  "pad_token_id": 151329,
  "padded_vocab_size": 151552,
  "post_layer_norm": true,
  "rmsnorm": true,
  "rope_ratio": 500,
  "seq_length": 131072,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "vocab_size": 151552
})";

// THUDM/glm-4-9b-chat-hf config.json.
constexpr const char* glm_9b_hf = R"({
  "architectures": ["GlmForCausalLM"],
  "attention_bias": true,
  "attention_dropout": 0.0,
  "eos_token_id": [151329, 151336, 151338],
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 13696,
  "max_position_embeddings": 131072,
  "model_type": "glm",
  "num_attention_heads": 32,
  "num_hidden_layers": 40,
  "num_key_value_heads": 2,
  "pad_token_id": 151329,
  "partial_rotary_factor": 0.5,
  "rms_norm_eps": 1.5625e-07,
  "rope_theta": 5000000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "vocab_size": 151552
})";

// THUDM/GLM-4-9B-0414 config.json.
constexpr const char* glm4_9b_0414 = R"({
  "architectures": ["Glm4ForCausalLM"],
  "attention_bias": true,
  "attention_dropout": 0.0,
  "eos_token_id": [151329, 151336, 151338],
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 13696,
  "max_position_embeddings": 32768,
  "model_type": "glm4",
  "num_attention_heads": 32,
  "num_hidden_layers": 40,
  "num_key_value_heads": 2,
  "pad_token_id": 151329,
  "partial_rotary_factor": 0.5,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "vocab_size": 151552
})";

std::string error_of(std::string_view json) {
  try {
    parse_model_config(json, "/models/x/config.json");
  } catch (const checkpoint_error& error) {
    return error.what();
  }
  FAIL("no checkpoint_error for " << json);
  return {};
}

// The text with `from` replaced by `to` (exactly once).
std::string edit(std::string text, std::string_view from, std::string_view to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  return text;
}

void check_9b_shapes(const model_config& c) {
  CHECK(c.vocab_size == 151552);
  CHECK(c.hidden_size == 4096);
  CHECK(c.intermediate_size == 13696);
  CHECK(c.num_layers == 40);
  CHECK(c.num_heads == 32);
  CHECK(c.num_kv_heads == 2);
  CHECK(c.head_dim == 128);
  CHECK(c.rotary_dim == 64);
  CHECK(c.qkv_bias);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.torch_dtype == dtype::bf16);
}

}  // namespace

TEST_CASE("config: THUDM glm-4-9b-chat parses as the chatglm layout", "[config]") {
  const auto c = parse_model_config(chatglm_9b, "config.json");
  CHECK(c.layout == checkpoint_layout::chatglm);
  check_9b_shapes(c);
  CHECK(c.rope_theta == Approx(5.0e6));
  CHECK(c.rms_norm_eps == Approx(1.5625e-07));
  CHECK(c.max_position_embeddings == 131072);
  CHECK_FALSE(c.post_norms);
}

TEST_CASE("config: glm-4-9b-chat-hf parses as the glm layout with the same model", "[config]") {
  const auto c = parse_model_config(glm_9b_hf, "config.json");
  CHECK(c.layout == checkpoint_layout::glm);
  check_9b_shapes(c);
  CHECK(c.rope_theta == Approx(5.0e6));
  CHECK(c.max_position_embeddings == 131072);
  CHECK_FALSE(c.post_norms);
}

TEST_CASE("config: GLM-4-9B-0414 parses as the glm4 layout with post norms", "[config]") {
  const auto c = parse_model_config(glm4_9b_0414, "config.json");
  CHECK(c.layout == checkpoint_layout::glm4);
  check_9b_shapes(c);
  CHECK(c.post_norms);
  CHECK(c.rope_theta == Approx(10000.0));
  CHECK(c.rms_norm_eps == Approx(1e-5));
  CHECK(c.max_position_embeddings == 32768);
}

TEST_CASE("config: the layout comes from model_type when architectures is absent or foreign", "[config]") {
  CHECK(parse_model_config(edit(glm_9b_hf, R"("architectures": ["GlmForCausalLM"],)", ""), "c").layout == checkpoint_layout::glm);
  CHECK(parse_model_config(edit(glm4_9b_0414, "Glm4ForCausalLM", "Glm4ForSequenceClassification"), "c").layout == checkpoint_layout::glm4);
  CHECK(parse_model_config(edit(chatglm_9b, "ChatGLMModel", "ChatGLMForConditionalGeneration"), "c").layout == checkpoint_layout::chatglm);
}

TEST_CASE("config: chatglm defaults", "[config]") {
  const auto c = parse_model_config(R"({"model_type": "chatglm", "num_layers": 2, "hidden_size": 64, "ffn_hidden_size": 96,
                                        "num_attention_heads": 4, "padded_vocab_size": 128})",
                                    "config.json");
  CHECK(c.head_dim == 16);       // hidden / heads without kv_channels
  CHECK(c.num_kv_heads == 4);    // no multi-query attention
  CHECK(c.rotary_dim == 8);
  CHECK(c.rope_theta == Approx(10000.0));  // rope_ratio 1
  CHECK_FALSE(c.qkv_bias);
  CHECK(c.torch_dtype == dtype::bf16);
}

TEST_CASE("config: glm defaults and transformers 5 rope_parameters", "[config]") {
  const char* minimal = R"({"model_type": "glm", "vocab_size": 128, "hidden_size": 64, "intermediate_size": 96,
                            "num_hidden_layers": 2, "num_attention_heads": 4, "dtype": "float16"})";
  const auto c = parse_model_config(minimal, "config.json");
  CHECK(c.head_dim == 16);
  CHECK(c.num_kv_heads == 4);
  CHECK(c.rotary_dim == 8);  // partial_rotary_factor 0.5
  CHECK(c.rope_theta == Approx(10000.0));
  CHECK(c.qkv_bias);
  CHECK(c.torch_dtype == dtype::f16);

  const auto v5 = parse_model_config(edit(minimal, R"("dtype": "float16")",
                                          R"("rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0, "partial_rotary_factor": 0.25})"),
                                     "config.json");
  CHECK(v5.rope_theta == Approx(5.0e6));
  CHECK(v5.rotary_dim == 4);
}

TEST_CASE("config: a missing key names the file and the key", "[config][errors]") {
  auto message = error_of(edit(chatglm_9b, R"("ffn_hidden_size": 13696,)", ""));
  CHECK_THAT(message, Contains("/models/x/config.json") && Contains("ffn_hidden_size") && Contains("missing"));
  message = error_of(edit(glm_9b_hf, R"("intermediate_size": 13696,)", ""));
  CHECK_THAT(message, Contains("/models/x/config.json") && Contains("intermediate_size"));
}

TEST_CASE("config: a wrong type names the file and the key", "[config][errors]") {
  CHECK_THAT(error_of(edit(glm_9b_hf, R"("hidden_size": 4096)", R"("hidden_size": "4096")")),
             Contains("config.json") && Contains("hidden_size") && Contains("integer"));
  CHECK_THAT(error_of(edit(chatglm_9b, R"("rope_ratio": 500)", R"("rope_ratio": [500])")),
             Contains("rope_ratio") && Contains("number"));
  CHECK_THAT(error_of(edit(chatglm_9b, R"("add_qkv_bias": true)", R"("add_qkv_bias": 1)")),
             Contains("add_qkv_bias") && Contains("true or false"));
}

TEST_CASE("config: unsupported values are refused by key", "[config][errors]") {
  CHECK_THAT(error_of(edit(chatglm_9b, R"("rmsnorm": true)", R"("rmsnorm": false)")), Contains("rmsnorm") && Contains("unsupported"));
  CHECK_THAT(error_of(edit(chatglm_9b, R"("add_bias_linear": false)", R"("add_bias_linear": true)")), Contains("add_bias_linear"));
  CHECK_THAT(error_of(edit(chatglm_9b, R"("apply_residual_connection_post_layernorm": false)",
                           R"("apply_residual_connection_post_layernorm": true)")),
             Contains("apply_residual_connection_post_layernorm"));
  CHECK_THAT(error_of(edit(glm_9b_hf, R"("torch_dtype": "bfloat16")", R"("torch_dtype": "int8")")),
             Contains("torch_dtype") && Contains("int8"));
  CHECK_THAT(error_of(edit(glm_9b_hf, R"("hidden_act": "silu")", R"("hidden_act": "gelu")")), Contains("hidden_act"));
  CHECK_THAT(error_of(edit(glm_9b_hf, R"("num_key_value_heads": 2)", R"("num_key_value_heads": 3)")),
             Contains("num_key_value_heads") && Contains("divide"));
  CHECK_THAT(error_of(edit(chatglm_9b, R"("multi_query_group_num": 2)", R"("multi_query_group_num": 0)")),
             Contains("multi_query_group_num"));
  CHECK_THAT(error_of(edit(glm_9b_hf, R"("partial_rotary_factor": 0.5)", R"("partial_rotary_factor": 0.3)")),
             Contains("partial_rotary_factor"));
  CHECK_THAT(error_of(edit(glm_9b_hf, R"("use_cache": true)", R"("rope_scaling": {"rope_type": "yarn", "factor": 4.0})")),
             Contains("rope_scaling"));
}

TEST_CASE("config: an unknown architecture lists the supported ones", "[config][errors]") {
  const auto message = error_of(R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8})");
  CHECK_THAT(message, Contains("config.json") && Contains("LlamaForCausalLM") && Contains("ChatGLMModel") &&
                          Contains("GlmForCausalLM") && Contains("Glm4ForCausalLM"));
  CHECK_THAT(error_of("{}"), Contains("unknown architecture"));
}

TEST_CASE("config: invalid JSON reports the line and column", "[config][errors]") {
  const auto message = error_of("{\n  \"model_type\": \"glm\",\n  \"hidden_size\": 40 96\n}");
  CHECK_THAT(message, Contains("/models/x/config.json") && Contains("invalid JSON") && Contains("config.json:3:"));
  CHECK_THAT(error_of("[1, 2]"), Contains("object"));
}

TEST_CASE("config: load_model_config reads the directory's config.json", "[config]") {
  testing::temp_dir dir;
  CHECK_THROWS_WITH(load_model_config(dir.path()), Contains("config.json") && Contains("not found"));
  testing::write_file(dir / "config.json", glm4_9b_0414);
  CHECK(load_model_config(dir.path()).layout == checkpoint_layout::glm4);
}

TEST_CASE("generation config: eos ids as a list or one id, pad id", "[config][generation]") {
  auto g = parse_generation_config(R"({"eos_token_id": [151329, 151336, 151338], "pad_token_id": 151329})", "g.json", "", "c.json");
  CHECK(g.eos_token_ids == std::vector<std::int32_t>{151329, 151336, 151338});
  CHECK(g.pad_token_id == 151329);
  g = parse_generation_config(R"({"eos_token_id": 2})", "g.json", "", "c.json");
  CHECK(g.eos_token_ids == std::vector<std::int32_t>{2});
  CHECK_FALSE(g.pad_token_id);
}

TEST_CASE("generation config: falls back to config.json, key by key", "[config][generation]") {
  testing::temp_dir dir;
  testing::write_file(dir / "config.json", chatglm_9b);
  auto g = load_generation_config(dir.path());  // no generation_config.json at all
  CHECK(g.eos_token_ids == std::vector<std::int32_t>{151329, 151336, 151338});
  CHECK(g.pad_token_id == 151329);

  testing::write_file(dir / "generation_config.json", R"({"eos_token_id": 7, "do_sample": true})");
  g = load_generation_config(dir.path());
  CHECK(g.eos_token_ids == std::vector<std::int32_t>{7});
  CHECK(g.pad_token_id == 151329);  // from config.json
}

TEST_CASE("generation config: errors name the file and the key", "[config][generation][errors]") {
  CHECK_THROWS_WITH(parse_generation_config(R"({"eos_token_id": "</s>"})", "/m/generation_config.json", "", "/m/config.json"),
                    Contains("/m/generation_config.json") && Contains("eos_token_id"));
  CHECK_THROWS_WITH(parse_generation_config(R"({"pad_token_id": 3})", "/m/generation_config.json", R"({"hidden_size": 1})", "/m/config.json"),
                    Contains("/m/generation_config.json") && Contains("/m/config.json") && Contains("eos_token_id"));
  CHECK_THROWS_WITH(parse_generation_config(R"({"eos_token_id": []})", "/m/generation_config.json", "", "/m/config.json"),
                    Contains("eos_token_id") && Contains("empty"));
  testing::temp_dir dir;
  CHECK_THROWS_WITH(load_generation_config(dir.path()), Contains("generation_config.json") && Contains("not found"));
}

TEST_CASE("config: the checked-in model fixtures parse", "[config][fixtures]") {
  const fs::path models = fs::path(GLM4_TEST_DATA_DIR) / "models";
  std::size_t num_models = 0;
  if (fs::is_directory(models)) {
    for (const auto& entry : fs::directory_iterator(models)) {
      if (!fs::exists(entry.path() / "config.json")) continue;
      INFO(entry.path());
      const auto c = load_model_config(entry.path());
      CHECK(c.num_layers > 0);
      CHECK(c.num_heads % c.num_kv_heads == 0);
      CHECK_FALSE(load_generation_config(entry.path()).eos_token_ids.empty());
      ++num_models;
    }
  }
  if (num_models == 0) WARN("no fixtures under " << models.string() << " yet");
}
