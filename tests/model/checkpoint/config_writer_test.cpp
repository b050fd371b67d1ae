#include "model/checkpoint/config_writer.hpp"

#include <catch2/catch.hpp>

#include "model/checkpoint/checkpoint_error.hpp"
#include "model/checkpoint/config_parser.hpp"
#include "model/checkpoint/make_model.hpp"

using namespace glm4::model;
using Catch::Matchers::Contains;

namespace {

void check_same(const model_config& a, const model_config& b) {
  CHECK(a.layout == b.layout);
  CHECK(a.vocab_size == b.vocab_size);
  CHECK(a.hidden_size == b.hidden_size);
  CHECK(a.intermediate_size == b.intermediate_size);
  CHECK(a.num_layers == b.num_layers);
  CHECK(a.num_heads == b.num_heads);
  CHECK(a.num_kv_heads == b.num_kv_heads);
  CHECK(a.head_dim == b.head_dim);
  CHECK(a.rotary_dim == b.rotary_dim);
  CHECK(a.rope_theta == Approx(b.rope_theta));
  CHECK(a.rms_norm_eps == Approx(b.rms_norm_eps));
  CHECK(a.qkv_bias == b.qkv_bias);
  CHECK(a.post_norms == b.post_norms);
  CHECK(a.tie_word_embeddings == b.tie_word_embeddings);
  CHECK(a.max_position_embeddings == b.max_position_embeddings);
  CHECK(a.torch_dtype == b.torch_dtype);
}

const generation_config stop_ids{{151329, 151336, 151338}, 151329};

}  // namespace

TEST_CASE("config writer: every preset round-trips through each layout's config.json", "[config][writer]") {
  for (const auto& preset : preset_names()) {
    for (auto layout : {checkpoint_layout::chatglm, checkpoint_layout::glm, checkpoint_layout::glm4}) {
      for (auto type : {glm4::kernels::dtype::bf16, glm4::kernels::dtype::f16, glm4::kernels::dtype::f32}) {
        INFO(preset << " " << layout_name(layout) << " " << glm4::kernels::dtype_name(type));
        const auto config = preset_config(preset, layout, type).value();
        const auto text = config_json_text(config, stop_ids);
        check_same(parse_model_config(text, "written config.json"), config);
        const auto generation = parse_generation_config(generation_config_json_text(config, stop_ids), "g", "", "c");
        CHECK(generation.eos_token_ids == stop_ids.eos_token_ids);
        CHECK(generation.pad_token_id == stop_ids.pad_token_id);
      }
    }
  }
}

TEST_CASE("config writer: uses each layout's own keys, Python-style numbers", "[config][writer]") {
  const auto chatglm = config_json_text(preset_config("glm-4-9b", checkpoint_layout::chatglm).value(), stop_ids);
  CHECK_THAT(chatglm, Contains(R"("rope_ratio": 500)") && Contains(R"("multi_query_group_num": 2)") &&
                          Contains(R"("padded_vocab_size": 151552)") && Contains(R"("layernorm_epsilon": 1.5625e-07)") &&
                          Contains(R"("ChatGLMModel")") && Contains("151336"));
  const auto glm = config_json_text(preset_config("glm-4-9b", checkpoint_layout::glm).value(), stop_ids);
  CHECK_THAT(glm, Contains(R"("partial_rotary_factor": 0.5)") && Contains(R"("rope_theta": 5000000)") &&
                      Contains(R"("GlmForCausalLM")") && Contains(R"("model_type": "glm")"));
  CHECK_THAT(config_json_text(preset_config("tiny", checkpoint_layout::glm4).value(), stop_ids),
             Contains(R"("Glm4ForCausalLM")") && Contains(R"("num_key_value_heads": 2)"));
}

TEST_CASE("config writer: refuses what a layout cannot express", "[config][writer][errors]") {
  auto config = preset_config("tiny", checkpoint_layout::chatglm).value();
  config.rotary_dim = config.head_dim;
  CHECK_THROWS_AS(config_json_text(config, stop_ids), checkpoint_error);
  config = preset_config("tiny", checkpoint_layout::glm).value();
  config.post_norms = true;
  CHECK_THROWS_WITH(config_json_text(config, stop_ids), Contains("post norms"));
}
