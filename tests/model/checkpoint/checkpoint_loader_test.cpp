#include "model/checkpoint/checkpoint_loader.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <map>

#include <boost/json.hpp>

#include "model/checkpoint/config_writer.hpp"
#include "model/checkpoint/safetensors_writer.hpp"
#include "model/checkpoint/weight_layout.hpp"
#include "tests/model/checkpoint/test_support.hpp"

using namespace glm4::model;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using glm4::kernels::dtype;
namespace fs = std::filesystem;

namespace {

model_config small_config(checkpoint_layout layout) {
  model_config c;
  c.layout = layout;
  c.vocab_size = 32;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 4;
  c.rotary_dim = 2;
  c.rope_theta = 10000.0;
  c.qkv_bias = true;
  c.post_norms = layout == checkpoint_layout::glm4;
  c.max_position_embeddings = 64;
  c.torch_dtype = dtype::f32;
  return c;
}

// Element i of the n-th stored tensor holds n * 100000 + i, so a view's first value says where it points.
float tag_of(std::size_t tensor_index, std::size_t element) { return static_cast<float>(tensor_index * 100000 + element); }

struct synthetic_checkpoint {
  model_config config;
  std::vector<tensor_record> records;  // what goes into the files; tests edit it before writing
  std::map<std::string, std::size_t> tag;

  explicit synthetic_checkpoint(model_config c) : config(c) {
    for (const auto& stored : stored_tensors(config)) {
      tag[stored.name] = records.size();
      records.push_back({stored.name, dtype::f32, stored.shape});
    }
  }

  void remove(const std::string& name) {
    records.erase(std::remove_if(records.begin(), records.end(), [&](const auto& r) { return r.name == name; }), records.end());
  }
  tensor_record& record(const std::string& name) {
    auto it = std::find_if(records.begin(), records.end(), [&](const auto& r) { return r.name == name; });
    REQUIRE(it != records.end());
    return *it;
  }

  void write_shard(const fs::path& path, const std::vector<tensor_record>& shard) {
    write_safetensors(path, shard, [&](std::size_t index, std::size_t offset, std::span<std::byte> out) {
      const auto it = tag.find(shard[index].name);
      const std::size_t n = it == tag.end() ? 999 : it->second;
      auto* values = reinterpret_cast<float*>(out.data());
      for (std::size_t i = 0; i < out.size() / 4; ++i) values[i] = tag_of(n, offset / 4 + i);
    });
  }

  void write(const fs::path& dir) {
    testing::write_file(dir / "config.json", config_json_text(config, {{2, 3}, 2}));
    write_shard(dir / "model.safetensors", records);
  }

  // Two shards split at the middle record, with an index.
  void write_sharded(const fs::path& dir) {
    testing::write_file(dir / "config.json", config_json_text(config, {{2, 3}, 2}));
    const auto middle = records.begin() + static_cast<std::ptrdiff_t>(records.size() / 2);
    const std::vector<tensor_record> first(records.begin(), middle), second(middle, records.end());
    write_shard(dir / "model-00001-of-00002.safetensors", first);
    write_shard(dir / "model-00002-of-00002.safetensors", second);
    boost::json::object map;
    for (const auto& r : first) map[r.name] = "model-00001-of-00002.safetensors";
    for (const auto& r : second) map[r.name] = "model-00002-of-00002.safetensors";
    testing::write_file(dir / "model.safetensors.index.json",
                        boost::json::serialize(boost::json::object{{"metadata", boost::json::object{}}, {"weight_map", map}}));
  }
};

float first_value(const glm4::kernels::tensor& t) { return t.as<float>()[0]; }

std::string load_error(const fs::path& dir) {
  try {
    load_checkpoint(dir);
  } catch (const checkpoint_error& error) {
    return error.what();
  }
  FAIL("no checkpoint_error loading " << dir);
  return {};
}

}  // namespace

TEST_CASE("loader: glm layout maps every tensor to its canonical field", "[loader]") {
  testing::temp_dir dir;
  synthetic_checkpoint ckpt(small_config(checkpoint_layout::glm));
  ckpt.write(dir.path());
  const auto loaded = load_checkpoint(dir.path());
  CHECK(loaded.dir == dir.path());
  CHECK(loaded.config.layout == checkpoint_layout::glm);
  CHECK(loaded.generation.eos_token_ids == std::vector<std::int32_t>{2, 3});
  const auto& w = loaded.weights;
  REQUIRE(w.layers.size() == 2);
  CHECK(w.tok_embeddings.shape == std::vector<std::int64_t>{32, 16});
  CHECK(first_value(w.tok_embeddings) == tag_of(ckpt.tag["model.embed_tokens.weight"], 0));
  CHECK(first_value(w.layers[1].wk) == tag_of(ckpt.tag["model.layers.1.self_attn.k_proj.weight"], 0));
  CHECK(w.layers[1].wk.shape == std::vector<std::int64_t>{8, 16});
  REQUIRE(w.layers[1].bv);
  CHECK(first_value(*w.layers[1].bv) == tag_of(ckpt.tag["model.layers.1.self_attn.v_proj.bias"], 0));
  CHECK(first_value(w.layers[0].w_gate_up) == tag_of(ckpt.tag["model.layers.0.mlp.gate_up_proj.weight"], 0));
  CHECK(w.layers[0].w_down.shape == std::vector<std::int64_t>{16, 24});
  CHECK(first_value(w.final_norm) == tag_of(ckpt.tag["model.norm.weight"], 0));
  CHECK(first_value(w.lm_head) == tag_of(ckpt.tag["lm_head.weight"], 0));
  CHECK_FALSE(w.layers[0].post_attn_norm);
  CHECK_FALSE(w.layers[0].post_ffn_norm);
  CHECK(w.lm_head.owner);
}

TEST_CASE("loader: glm4 layout fills the post norms", "[loader]") {
  testing::temp_dir dir;
  synthetic_checkpoint ckpt(small_config(checkpoint_layout::glm4));
  ckpt.write(dir.path());
  const auto loaded = load_checkpoint(dir.path());
  REQUIRE(loaded.weights.layers[1].post_attn_norm);
  REQUIRE(loaded.weights.layers[1].post_ffn_norm);
  CHECK(first_value(*loaded.weights.layers[1].post_attn_norm) == tag_of(ckpt.tag["model.layers.1.post_self_attn_layernorm.weight"], 0));
  CHECK(first_value(*loaded.weights.layers[1].post_ffn_norm) == tag_of(ckpt.tag["model.layers.1.post_mlp_layernorm.weight"], 0));
}

TEST_CASE("loader: chatglm's fused query_key_value becomes three zero-copy row views", "[loader]") {
  testing::temp_dir dir;
  synthetic_checkpoint ckpt(small_config(checkpoint_layout::chatglm));
  ckpt.records.push_back({"transformer.rotary_pos_emb.inv_freq", dtype::f32, {1}});
  ckpt.write(dir.path());
  testing::stderr_capture capture;
  const auto loaded = load_checkpoint(dir.path());
  CHECK(capture.finish().empty());  // inv_freq is ignored without a warning
  const auto& layer = loaded.weights.layers[1];
  const std::size_t fused = ckpt.tag["transformer.encoder.layers.1.self_attention.query_key_value.weight"];
  CHECK(layer.wq.shape == std::vector<std::int64_t>{16, 16});
  CHECK(layer.wk.shape == std::vector<std::int64_t>{8, 16});
  CHECK(layer.wv.shape == std::vector<std::int64_t>{8, 16});
  CHECK(first_value(layer.wq) == tag_of(fused, 0));
  CHECK(first_value(layer.wk) == tag_of(fused, 16 * 16));
  CHECK(first_value(layer.wv) == tag_of(fused, 16 * 16 + 8 * 16));
  CHECK(layer.wk.as<float>() == layer.wq.as<float>() + 16 * 16);  // views into one buffer, not copies
  CHECK(layer.wq.owner == layer.wv.owner);
  const std::size_t bias = ckpt.tag["transformer.encoder.layers.1.self_attention.query_key_value.bias"];
  REQUIRE(layer.bk);
  CHECK(layer.bk->shape == std::vector<std::int64_t>{8});
  CHECK(first_value(*layer.bk) == tag_of(bias, 16));
  CHECK(first_value(layer.wo) == tag_of(ckpt.tag["transformer.encoder.layers.1.self_attention.dense.weight"], 0));
  CHECK(first_value(loaded.weights.lm_head) == tag_of(ckpt.tag["transformer.output_layer.weight"], 0));
}

TEST_CASE("loader: tied embeddings make the LM head the embedding itself", "[loader]") {
  testing::temp_dir dir;
  auto config = small_config(checkpoint_layout::glm);
  config.tie_word_embeddings = true;
  config.qkv_bias = false;
  synthetic_checkpoint ckpt(config);
  ckpt.write(dir.path());
  const auto loaded = load_checkpoint(dir.path());
  CHECK(loaded.weights.lm_head.data == loaded.weights.tok_embeddings.data);
  CHECK(loaded.weights.lm_head.shape == std::vector<std::int64_t>{32, 16});
  CHECK_FALSE(loaded.weights.layers[0].bq);
}

TEST_CASE("loader: a missing tensor names the layout's tensor, the canonical one and the layout", "[loader][errors]") {
  testing::temp_dir dir;
  synthetic_checkpoint ckpt(small_config(checkpoint_layout::glm));
  ckpt.remove("model.layers.1.self_attn.k_proj.weight");
  ckpt.write(dir.path());
  CHECK_THAT(load_error(dir.path()),
             Contains(dir.path().string()) && Contains("model.layers.1.self_attn.k_proj.weight") && Contains("layers.1.wk") && Contains("glm"));

  testing::temp_dir chatglm_dir;
  synthetic_checkpoint chatglm(small_config(checkpoint_layout::chatglm));
  chatglm.remove("transformer.encoder.layers.0.self_attention.query_key_value.weight");
  chatglm.write(chatglm_dir.path());
  CHECK_THAT(load_error(chatglm_dir.path()),
             Contains("query_key_value.weight") && Contains("layers.0.wq, layers.0.wk, layers.0.wv") && Contains("chatglm"));
}

TEST_CASE("loader: a wrong shape names the tensor, the file, expected and actual", "[loader][errors]") {
  testing::temp_dir dir;
  synthetic_checkpoint ckpt(small_config(checkpoint_layout::glm));
  ckpt.record("model.layers.0.self_attn.o_proj.weight").shape = {16, 15};
  ckpt.write(dir.path());
  CHECK_THAT(load_error(dir.path()), Contains((dir / "model.safetensors").string()) && Contains("model.layers.0.self_attn.o_proj.weight") &&
                                         Contains("layers.0.wo") && Contains("expected shape [16, 16]") && Contains("got [16, 15]"));
}

TEST_CASE("loader: unused tensors are a warning on stderr, not an error", "[loader]") {
  testing::temp_dir dir;
  synthetic_checkpoint ckpt(small_config(checkpoint_layout::glm));
  ckpt.records.push_back({"model.layers.0.mlp.experts.0.weight", dtype::f32, {4}});
  ckpt.write(dir.path());
  testing::stderr_capture capture;
  const auto loaded = load_checkpoint(dir.path());
  const auto warnings = capture.finish();
  CHECK_THAT(warnings, Contains("warning") && Contains("model.layers.0.mlp.experts.0.weight") && Contains("model.safetensors"));
  CHECK(loaded.weights.layers.size() == 2);
}

TEST_CASE("loader: sharded checkpoints load through the index", "[loader][sharded]") {
  testing::temp_dir single_dir, sharded_dir;
  synthetic_checkpoint ckpt(small_config(checkpoint_layout::chatglm));
  ckpt.write(single_dir.path());
  ckpt.write_sharded(sharded_dir.path());
  const auto single = load_checkpoint(single_dir.path());
  const auto sharded = load_checkpoint(sharded_dir.path());
  CHECK(first_value(sharded.weights.lm_head) == first_value(single.weights.lm_head));
  CHECK(first_value(sharded.weights.tok_embeddings) == first_value(single.weights.tok_embeddings));
  CHECK(first_value(sharded.weights.layers[1].wv) == first_value(single.weights.layers[1].wv));
  // The two halves come from different mappings.
  CHECK(sharded.weights.lm_head.owner != sharded.weights.tok_embeddings.owner);
}

TEST_CASE("loader: bad indexes name the index, the shard and the tensor", "[loader][sharded][errors]") {
  testing::temp_dir dir;
  synthetic_checkpoint ckpt(small_config(checkpoint_layout::glm));
  ckpt.write_sharded(dir.path());
  const auto index_path = dir / "model.safetensors.index.json";
  const std::string index = testing::read_file(index_path);

  SECTION("a shard that does not exist") {
    fs::remove(dir / "model-00002-of-00002.safetensors");
    CHECK_THAT(load_error(dir.path()), Contains("model-00002-of-00002.safetensors") && Contains(index_path.string()));
  }
  SECTION("a tensor placed in a shard that lacks it") {
    auto value = boost::json::parse(index);
    value.at("weight_map").as_object()["lm_head.weight"] = "model-00001-of-00002.safetensors";
    testing::write_file(index_path, boost::json::serialize(value));
    CHECK_THAT(load_error(dir.path()), Contains("model-00001-of-00002.safetensors") && Contains("lm_head.weight") && Contains("index"));
  }
  SECTION("no weight_map") {
    testing::write_file(index_path, R"({"metadata": {}})");
    CHECK_THAT(load_error(dir.path()), Contains(index_path.string()) && Contains("weight_map"));
  }
  SECTION("a file name that leaves the directory") {
    testing::write_file(index_path, R"({"weight_map": {"lm_head.weight": "../model.safetensors"}})");
    CHECK_THAT(load_error(dir.path()), Contains("weight_map") && Contains("../model.safetensors"));
  }
  SECTION("a truncated shard") {
    const auto shard = dir / "model-00002-of-00002.safetensors";
    fs::resize_file(shard, fs::file_size(shard) - 10);
    CHECK_THAT(load_error(dir.path()), Contains(shard.string()) && Contains("lm_head.weight") && Contains("truncated"));
  }
}

TEST_CASE("loader: directories without weights or config say what is missing", "[loader][errors]") {
  testing::temp_dir dir;
  CHECK_THAT(load_error(dir.path()), Contains("config.json"));
  synthetic_checkpoint ckpt(small_config(checkpoint_layout::glm));
  testing::write_file(dir / "config.json", config_json_text(ckpt.config, {{2}, std::nullopt}));
  CHECK_THAT(load_error(dir.path()), Contains("model.safetensors"));
  testing::write_file(dir / "pytorch_model.bin", "x");
  CHECK_THAT(load_error(dir.path()), Contains("pytorch_model.bin") && Contains("only safetensors"));
  CHECK_THAT(load_error(dir / "absent"), Contains("not a directory"));
}

TEST_CASE("loader: a large checkpoint reports progress and a memory summary", "[loader]") {
  // One 1.1 GiB tied embedding in a sparse file: nothing touches the pages, so this is quick.
  testing::temp_dir dir;
  model_config config = small_config(checkpoint_layout::glm);
  config.vocab_size = 1100 * 1024;
  config.hidden_size = 512;
  config.num_heads = 8;
  config.head_dim = 64;
  config.rotary_dim = 32;
  config.intermediate_size = 512;
  config.tie_word_embeddings = true;
  config.torch_dtype = dtype::bf16;
  testing::write_file(dir / "config.json", config_json_text(config, {{2}, std::nullopt}));

  boost::json::object header;
  std::uint64_t offset = 0;
  for (const auto& stored : stored_tensors(config)) {
    std::uint64_t bytes = 2;
    for (auto extent : stored.shape) bytes *= static_cast<std::uint64_t>(extent);
    boost::json::array shape(stored.shape.begin(), stored.shape.end());
    header[stored.name] = boost::json::object{{"dtype", "BF16"}, {"shape", shape}, {"data_offsets", boost::json::array{offset, offset + bytes}}};
    offset += bytes;
  }
  const auto path = dir / "model.safetensors";
  testing::write_raw_safetensors(path, boost::json::serialize(header), "");
  fs::resize_file(path, fs::file_size(path) + offset);

  testing::stderr_capture capture;
  const auto loaded = load_checkpoint(dir.path());
  const auto report = capture.finish();
  CHECK_THAT(report, Contains("[1/1] model.safetensors") && Contains("GiB") && Contains("BF16") && Contains("mapped file"));
  CHECK(loaded.weights.lm_head.data == loaded.weights.tok_embeddings.data);
  CHECK_THAT(weights_summary(loaded.config, loaded.weights), StartsWith("weights: 25 tensors, 1.0") && Contains("(BF16 1.0"));
}

namespace {

const fs::path fixture_models = fs::path(GLM4_TEST_DATA_DIR) / "models";

bool identical(const glm4::kernels::tensor& a, const glm4::kernels::tensor& b) {
  return a.type == b.type && a.shape == b.shape && std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("loader: the fixture checkpoints load in all three layouts", "[loader][fixtures]") {
  if (!fs::is_directory(fixture_models)) {
    WARN("no fixtures under " << fixture_models.string());
    return;
  }
  for (const char* name : {"glm-f32", "glm-bf16", "chatglm-f32", "chatglm-bf16", "glm4-f32", "glm4-bf16"}) {
    INFO(name);
    testing::stderr_capture capture;
    const auto loaded = load_checkpoint(fixture_models / name);
    CHECK(capture.finish().empty());  // nothing unused (chatglm's inv_freq is ignored quietly)
    const auto& c = loaded.config;
    CHECK(c.hidden_size == 64);
    CHECK(c.num_heads * c.head_dim == 96);
    CHECK(c.rotary_dim == 12);
    CHECK(c.rope_theta == Approx(15000.0));
    CHECK(loaded.generation.eos_token_ids == std::vector<std::int32_t>{1010, 1017, 1019});
    const auto& layer = loaded.weights.layers.at(1);
    CHECK(layer.wq.shape == std::vector<std::int64_t>{96, 64});
    CHECK(layer.wk.shape == std::vector<std::int64_t>{48, 64});
    CHECK(layer.wo.shape == std::vector<std::int64_t>{64, 96});
    CHECK(layer.w_gate_up.shape == std::vector<std::int64_t>{320, 64});
    CHECK(layer.post_attn_norm.has_value() == (c.layout == checkpoint_layout::glm4));
  }
}

TEST_CASE("loader: the chatglm fixtures split into exactly the glm fixtures' q, k, v", "[loader][fixtures]") {
  if (!fs::is_directory(fixture_models)) {
    WARN("no fixtures under " << fixture_models.string());
    return;
  }
  for (const char* type : {"f32", "bf16"}) {
    INFO(type);
    const auto glm = load_checkpoint(fixture_models / (std::string("glm-") + type));
    const auto chatglm = load_checkpoint(fixture_models / (std::string("chatglm-") + type));
    std::size_t num_compared = 0;
    for_each_weight(glm.config, glm.weights, [&](const weight_id& id, const glm4::kernels::tensor& t) {
      INFO(canonical_name(id));
      const auto* other = find_weight(chatglm.weights, id);
      REQUIRE(other);
      CHECK(identical(t, *other));
      ++num_compared;
    });
    CHECK(num_compared == 1 + 2 * 11 + 2);
  }
}
