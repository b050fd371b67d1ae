// convert_weights: every canonical weight in the asked type, rounded once; tensors already in that
// type stay views of the checkpoint; chatglm's fused q/k/v views convert like the rest.
#include <catch2/catch.hpp>

#include <cmath>

#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/checkpoint/weight_conversion.hpp"
#include "model/checkpoint/weight_layout.hpp"

namespace glm4::model {
namespace {

std::filesystem::path fixture(const std::string& name) { return std::filesystem::path(GLM4_TEST_DATA_DIR) / "models" / name; }

float as_f32(const kernels::tensor& t, std::int64_t i) {
  if (t.type == kernels::dtype::f32) return t.as<float>()[i];
  if (t.type == kernels::dtype::bf16) return kernels::bf16_to_f32(t.as<std::uint16_t>()[i]);
  return kernels::f16_to_f32(t.as<std::uint16_t>()[i]);
}

}  // namespace

TEST_CASE("convert_weights widens BF16 exactly and rounds F32 once, in every layout", "[checkpoint][dtype]") {
  for (const std::string dir : {"chatglm-bf16", "glm4-bf16", "glm-f32"}) {
    CAPTURE(dir);
    const checkpoint loaded = load_checkpoint(fixture(dir));
    for (const auto type : {kernels::dtype::f32, kernels::dtype::bf16, kernels::dtype::f16}) {
      CAPTURE(kernels::dtype_name(type));
      const model_weights converted = convert_weights(loaded.config, loaded.weights, type);
      std::size_t num_checked = 0;
      for (const canonical_tensor& canonical : canonical_tensors(loaded.config)) {
        const kernels::tensor* from = find_weight(loaded.weights, canonical.id);
        const kernels::tensor* to = find_weight(converted, canonical.id);
        REQUIRE(from);
        REQUIRE(to);
        CAPTURE(canonical_name(canonical.id));
        REQUIRE(to->type == type);
        REQUIRE(to->shape == from->shape);
        if (from->type == type) CHECK(to->data == from->data);  // no copy
        for (std::int64_t i = 0; i < from->numel(); ++i) {
          const float value = as_f32(*from, i);
          const float want = type == kernels::dtype::f32    ? value
                             : type == kernels::dtype::bf16 ? kernels::bf16_to_f32(kernels::f32_to_bf16(value))
                                                            : kernels::f16_to_f32(kernels::f32_to_f16(value));
          REQUIRE(as_f32(*to, i) == want);
        }
        ++num_checked;
      }
      CHECK(num_checked == canonical_tensors(loaded.config).size());
    }
  }
}

TEST_CASE("convert_weights keeps a tied head tied and refuses an integer type", "[checkpoint][dtype]") {
  checkpoint loaded = load_checkpoint(fixture("glm-bf16"));
  loaded.config.tie_word_embeddings = true;
  loaded.weights.lm_head = loaded.weights.tok_embeddings;
  const model_weights converted = convert_weights(loaded.config, loaded.weights, kernels::dtype::f32);
  CHECK(converted.lm_head.data == converted.tok_embeddings.data);
  CHECK(converted.tok_embeddings.type == kernels::dtype::f32);
  CHECK_THROWS_AS(convert_weights(loaded.config, loaded.weights, kernels::dtype::i32), std::invalid_argument);
}

}  // namespace glm4::model
