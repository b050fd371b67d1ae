#include "model/checkpoint/make_model.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/checkpoint/embedded_tokenizer.hpp"
#include "model/checkpoint/weight_layout.hpp"
#include "tests/model/checkpoint/test_support.hpp"

using namespace glm4::model;
using Catch::Matchers::Contains;
using glm4::kernels::dtype;
namespace fs = std::filesystem;

namespace {

constexpr checkpoint_layout all_layouts[] = {checkpoint_layout::chatglm, checkpoint_layout::glm, checkpoint_layout::glm4};

checkpoint make_and_load(const fs::path& dir, checkpoint_layout layout, dtype type, std::uint64_t seed,
                         std::uint64_t max_shard_bytes = default_max_shard_bytes) {
  make_model({"tiny", layout, type, seed, dir, max_shard_bytes});
  return load_checkpoint(dir);
}

bool same_bytes(const glm4::kernels::tensor& a, const glm4::kernels::tensor& b) {
  return a.type == b.type && a.shape == b.shape && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

float value_at(const glm4::kernels::tensor& t, std::size_t i) {
  switch (t.type) {
    case dtype::f32: return t.as<float>()[i];
    case dtype::f16: return glm4::kernels::f16_to_f32(t.as<std::uint16_t>()[i]);
    case dtype::bf16: return glm4::kernels::bf16_to_f32(t.as<std::uint16_t>()[i]);
    default: return NAN;
  }
}

struct moments {
  double mean = 0, stddev = 0;
  bool finite = true;
};

moments moments_of(const glm4::kernels::tensor& t) {
  moments m;
  double sum = 0, sum_sq = 0;
  const auto n = static_cast<std::size_t>(t.numel());
  for (std::size_t i = 0; i < n; ++i) {
    const double v = value_at(t, i);
    m.finite = m.finite && std::isfinite(v);
    sum += v;
    sum_sq += v * v;
  }
  m.mean = sum / static_cast<double>(n);
  m.stddev = std::sqrt(std::max(0.0, sum_sq / static_cast<double>(n) - m.mean * m.mean));
  return m;
}

}  // namespace

TEST_CASE("make-model: tiny loads back in every layout and dtype", "[make_model]") {
  for (auto layout : all_layouts) {
    for (auto type : {dtype::bf16, dtype::f16, dtype::f32}) {
      INFO(layout_name(layout) << " " << glm4::kernels::dtype_name(type));
      testing::temp_dir dir;
      const auto loaded = make_and_load(dir.path(), layout, type, 7);
      const auto expected = preset_config("tiny", layout, type).value();
      CHECK(loaded.config.layout == layout);
      CHECK(loaded.config.torch_dtype == type);
      CHECK(loaded.config.vocab_size == expected.vocab_size);
      CHECK(loaded.config.num_layers == 4);
      CHECK(loaded.config.num_kv_heads == 2);
      CHECK(loaded.config.rotary_dim == 16);
      CHECK(loaded.config.post_norms == (layout == checkpoint_layout::glm4));
      CHECK(loaded.generation.eos_token_ids == std::vector<std::int32_t>{1010, 1017, 1019});
      CHECK(loaded.generation.pad_token_id == 1010);
      CHECK(loaded.weights.layers.size() == 4);
      CHECK(loaded.weights.layers[3].wq.type == type);
      CHECK(loaded.weights.lm_head.shape == std::vector<std::int64_t>{1024, 256});
      CHECK(fs::exists(dir / "model.safetensors"));
      CHECK_FALSE(fs::exists(dir / "model.safetensors.index.json"));
      CHECK(fs::exists(dir / "tokenizer_config.json"));
      CHECK(fs::exists(dir / (layout == checkpoint_layout::chatglm ? "tokenizer.model" : "tokenizer.json")));
      CHECK(fs::file_size(dir / "model.safetensors") > preset_weight_bytes(expected));
    }
  }
}

TEST_CASE("make-model: the same seed gives byte-identical canonical tensors in every layout", "[make_model]") {
  testing::temp_dir chatglm_dir, glm_dir, glm4_dir;
  const auto chatglm = make_and_load(chatglm_dir.path(), checkpoint_layout::chatglm, dtype::bf16, 42);
  const auto glm = make_and_load(glm_dir.path(), checkpoint_layout::glm, dtype::bf16, 42);
  const auto glm4 = make_and_load(glm4_dir.path(), checkpoint_layout::glm4, dtype::bf16, 42);
  std::size_t num_compared = 0;
  for_each_weight(glm.config, glm.weights, [&](const weight_id& id, const glm4::kernels::tensor& t) {
    INFO(canonical_name(id));
    const auto* in_chatglm = find_weight(chatglm.weights, id);
    const auto* in_glm4 = find_weight(glm4.weights, id);
    REQUIRE(in_chatglm);
    REQUIRE(in_glm4);
    CHECK(same_bytes(t, *in_chatglm));
    CHECK(same_bytes(t, *in_glm4));
    ++num_compared;
  });
  CHECK(num_compared == 1 + 4 * 11 + 2);
}

TEST_CASE("make-model: a different seed gives different weights", "[make_model]") {
  testing::temp_dir a_dir, b_dir;
  const auto a = make_and_load(a_dir.path(), checkpoint_layout::glm, dtype::f32, 1);
  const auto b = make_and_load(b_dir.path(), checkpoint_layout::glm, dtype::f32, 2);
  CHECK_FALSE(same_bytes(a.weights.layers[0].wq, b.weights.layers[0].wq));
  CHECK_FALSE(same_bytes(a.weights.tok_embeddings, b.weights.tok_embeddings));
  CHECK_FALSE(same_bytes(a.weights.layers[2].attn_norm, b.weights.layers[2].attn_norm));
  // And within one model, no two tensors of one shape repeat each other.
  CHECK_FALSE(same_bytes(a.weights.layers[0].wq, a.weights.layers[1].wq));
  CHECK_FALSE(same_bytes(a.weights.layers[0].wk, a.weights.layers[0].wv));
}

TEST_CASE("make-model: values have the intended scale", "[make_model]") {
  testing::temp_dir dir;
  const auto m = make_and_load(dir.path(), checkpoint_layout::glm4, dtype::f32, 3);
  const auto embedding = moments_of(m.weights.tok_embeddings);
  CHECK(embedding.finite);
  CHECK(std::fabs(embedding.mean) < 0.01);
  CHECK(embedding.stddev == Approx(1.0).epsilon(0.02));
  const auto wq = moments_of(m.weights.layers[1].wq);
  CHECK(wq.stddev == Approx(1.0 / 16).epsilon(0.03));  // 1/sqrt(hidden 256)
  const auto down = moments_of(m.weights.layers[1].w_down);
  CHECK(down.stddev == Approx(1.0 / std::sqrt(704.0)).epsilon(0.03));
  const auto norm = moments_of(*m.weights.layers[1].post_ffn_norm);
  CHECK(norm.mean == Approx(1.0).epsilon(0.01));
  CHECK(norm.stddev < 0.05);
  CHECK(moments_of(*m.weights.layers[0].bq).stddev < 0.05);
}

TEST_CASE("make-model: sharding writes an index and loads the same weights", "[make_model][sharded]") {
  testing::temp_dir single_dir, sharded_dir;
  const auto single = make_and_load(single_dir.path(), checkpoint_layout::chatglm, dtype::bf16, 9);
  const auto sharded = make_and_load(sharded_dir.path(), checkpoint_layout::chatglm, dtype::bf16, 9, 1 << 20);
  CHECK(fs::exists(sharded_dir / "model.safetensors.index.json"));
  CHECK_FALSE(fs::exists(sharded_dir / "model.safetensors"));
  std::size_t num_shards = 0;
  for (const auto& entry : fs::directory_iterator(sharded_dir.path()))
    if (entry.path().filename().string().starts_with("model-")) ++num_shards;
  CHECK(num_shards >= 3);
  CHECK(fs::exists(sharded_dir / ("model-00001-of-0000" + std::to_string(num_shards) + ".safetensors")));
  for_each_weight(single.config, single.weights, [&](const weight_id& id, const glm4::kernels::tensor& t) {
    INFO(canonical_name(id));
    CHECK(same_bytes(t, *find_weight(sharded.weights, id)));
  });

  // Writing unsharded into the same directory replaces the shards and the index.
  make_model({"tiny", checkpoint_layout::chatglm, dtype::bf16, 9, sharded_dir.path()});
  CHECK_FALSE(fs::exists(sharded_dir / "model.safetensors.index.json"));
  CHECK_FALSE(fs::exists(sharded_dir / ("model-00001-of-0000" + std::to_string(num_shards) + ".safetensors")));
  CHECK(same_bytes(load_checkpoint(sharded_dir.path()).weights.layers[0].wk, single.weights.layers[0].wk));
}

TEST_CASE("make-model: presets", "[make_model]") {
  CHECK(preset_names() == std::vector<std::string>{"tiny", "glm-4-1b", "glm-4-9b"});
  CHECK_FALSE(preset_config("glm-5", checkpoint_layout::glm));
  const auto nine = preset_config("glm-4-9b", checkpoint_layout::chatglm).value();
  CHECK(nine.rope_theta == Approx(5.0e6));
  // glm-4-9b-chat's 9,399,951,360 parameters: its index's total_size in BF16.
  CHECK(preset_weight_bytes(nine) == 18799902720ull);
  const auto one = preset_config("glm-4-1b", checkpoint_layout::glm, dtype::f32).value();
  CHECK(one.hidden_size == 1536);
  CHECK(one.num_heads * one.head_dim == 1536);
  CHECK(one.torch_dtype == dtype::f32);
}

TEST_CASE("make-model: refuses unknown presets and dtypes", "[make_model][errors]") {
  testing::temp_dir dir;
  CHECK_THROWS_WITH(make_model({"huge", checkpoint_layout::glm, dtype::bf16, 0, dir.path()}),
                    Contains("huge") && Contains("tiny") && Contains("glm-4-9b"));
  CHECK_THROWS_WITH(make_model({"tiny", checkpoint_layout::glm, dtype::i32, 0, dir.path()}), Contains("I32"));
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("make-model: the tokenizer files are the embedded copies of tests/data/tokenizer", "[make_model]") {
  const fs::path source = fs::path(GLM4_TEST_DATA_DIR) / "tokenizer";
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "tokenizer.model"}) {
    INFO(name);
    const auto embedded = embedded_tokenizer_file(name);
    REQUIRE(embedded);
    CHECK(*embedded == testing::read_file(source / name));
  }
  CHECK_FALSE(embedded_tokenizer_file("vocab.txt"));
  testing::temp_dir glm_dir, chatglm_dir;
  make_model({"tiny", checkpoint_layout::glm, dtype::bf16, 0, glm_dir.path()});
  make_model({"tiny", checkpoint_layout::chatglm, dtype::bf16, 0, chatglm_dir.path()});
  CHECK(testing::read_file(glm_dir / "tokenizer.json") == testing::read_file(source / "tokenizer.json"));
  CHECK(testing::read_file(chatglm_dir / "tokenizer.model") == testing::read_file(source / "tokenizer.model"));
  CHECK(testing::read_file(chatglm_dir / "tokenizer_config.json") == testing::read_file(source / "tokenizer_config.json"));
}
