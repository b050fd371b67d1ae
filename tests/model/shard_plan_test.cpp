// The shard plan covers every weight exactly once across the ranks (KV heads once per replica),
// and the ranks' partial outputs sum (or concatenate) to the full layer's.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/backend.hpp"
#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/checkpoint/make_model.hpp"
#include "model/shard_plan.hpp"
#include "tests/model/reference_fixture.hpp"

namespace glm4::model {
namespace {

model_config glm4_9b_config() {
  model_config config;
  config.vocab_size = 151552;
  config.hidden_size = 4096;
  config.intermediate_size = 13696;
  config.num_layers = 40;
  config.num_heads = 32;
  config.num_kv_heads = 2;
  config.head_dim = 128;
  config.rotary_dim = 64;
  return config;
}

model_config fixture_config() {
  model_config config;
  config.vocab_size = 1024;
  config.hidden_size = 64;
  config.intermediate_size = 160;
  config.num_layers = 2;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.head_dim = 24;
  config.rotary_dim = 12;
  return config;
}

/// How many ranks hold each index of [0, total), given each rank's ranges.
struct coverage {
  std::vector<int> holders;
  explicit coverage(std::int64_t total) : holders(static_cast<std::size_t>(total), 0) {}
  void add(index_range range) {
    REQUIRE(range.begin >= 0);
    REQUIRE(range.end <= static_cast<std::int64_t>(holders.size()));
    for (std::int64_t i = range.begin; i < range.end; ++i) ++holders[static_cast<std::size_t>(i)];
  }
  bool every_index_held(int times) const {
    for (int count : holders)
      if (count != times) return false;
    return true;
  }
};

void check_coverage(const model_config& config, std::int64_t tp) {
  INFO("tp " << tp << ", " << config.num_heads << " heads, " << config.num_kv_heads << " KV heads");
  const std::int64_t d = config.head_dim, f = config.intermediate_size;
  coverage q_rows(config.num_heads * d), o_columns(config.num_heads * d), kv_rows(config.num_kv_heads * d);
  coverage gate_up_rows(2 * f), down_columns(f), vocab(config.vocab_size);
  const int replicas = static_cast<int>(std::max<std::int64_t>(1, tp / config.num_kv_heads));
  for (std::int64_t rank = 0; rank < tp; ++rank) {
    const shard_plan plan = make_shard_plan(config, tp, rank, {0, config.num_layers});
    INFO(describe(plan));
    CHECK(plan.q_heads.count() == config.num_heads / tp);
    CHECK(plan.kv_replicas == replicas);
    CHECK(plan.kv_heads.count() == std::max<std::int64_t>(1, config.num_kv_heads / tp));
    // Every query head of the rank reads a KV head the rank holds.
    const std::int64_t group = config.num_heads / config.num_kv_heads;
    for (std::int64_t h = plan.q_heads.begin; h < plan.q_heads.end; ++h) CHECK(plan.kv_heads.contains(h / group));
    if (tp > config.num_kv_heads) CHECK(plan.kv_heads.begin == rank * config.num_kv_heads / tp);
    CHECK(plan.gate_rows.end <= f);
    CHECK(plan.up_rows.begin >= f);
    CHECK(plan.up_rows.begin - f == plan.gate_rows.begin);
    CHECK(plan.embedding_rows == index_range{0, config.vocab_size});
    CHECK((plan.has_embedding && plan.has_lm_head));
    q_rows.add(plan.q_rows);
    o_columns.add(plan.o_columns);
    kv_rows.add(plan.kv_rows);
    gate_up_rows.add(plan.gate_rows);
    gate_up_rows.add(plan.up_rows);
    down_columns.add(plan.down_columns);
    vocab.add(plan.lm_head_rows);
  }
  CHECK(q_rows.every_index_held(1));
  CHECK(o_columns.every_index_held(1));
  CHECK(kv_rows.every_index_held(replicas));
  CHECK(gate_up_rows.every_index_held(1));
  CHECK(down_columns.every_index_held(1));
  CHECK(vocab.every_index_held(1));
}

}  // namespace

TEST_CASE("shard plans cover glm-4-9b for tp 1, 2, 4 and 8", "[model][shard]") {
  for (std::int64_t tp : {1, 2, 4, 8}) check_coverage(glm4_9b_config(), tp);
}

TEST_CASE("shard plans cover the fixture shapes (4 heads, 2 KV heads) for tp 1, 2 and 4", "[model][shard]") {
  for (std::int64_t tp : {1, 2, 4}) check_coverage(fixture_config(), tp);
}

TEST_CASE("KV heads are replicated when ranks outnumber them", "[model][shard]") {
  const model_config config = glm4_9b_config();
  const shard_plan plan = make_shard_plan(config, 8, 5, {0, 40});
  CHECK(plan.q_heads == index_range{20, 24});
  CHECK(plan.kv_heads == index_range{1, 2});
  CHECK(plan.kv_replicas == 4);
  CHECK(plan.kv_rows == index_range{128, 256});
  CHECK(plan.o_columns == index_range{2560, 3072});
  CHECK(plan.ffn == index_range{8560, 10272});
  CHECK(plan.up_rows == index_range{13696 + 8560, 13696 + 10272});
  CHECK(plan.lm_head_rows == index_range{94720, 113664});
  const model_config local = local_config(config, plan);
  CHECK(local.num_heads == 4);
  CHECK(local.num_kv_heads == 1);
  CHECK(local.intermediate_size == 1712);
  CHECK(local.num_layers == 40);
  CHECK(local.vocab_size == config.vocab_size);
}

TEST_CASE("shard plans that cannot work are refused", "[model][shard]") {
  const model_config glm = glm4_9b_config();
  CHECK_THROWS_WITH(make_shard_plan(glm, 3, 0, {0, 40}), Catch::Contains("32 query heads do not split over 3 ranks"));
  CHECK_THROWS_WITH(make_shard_plan(fixture_config(), 8, 0, {0, 2}), Catch::Contains("4 query heads do not split over 8 ranks"));
  model_config odd = glm;
  odd.num_heads = 24;
  odd.num_kv_heads = 4;
  CHECK_THROWS_WITH(make_shard_plan(odd, 6, 0, {0, 40}), Catch::Contains("4 KV heads and 6 ranks: one must divide the other"));
  model_config ffn = glm;
  ffn.intermediate_size = 13697;
  CHECK_THROWS_WITH(make_shard_plan(ffn, 2, 0, {0, 40}), Catch::Contains("FFN size 13697"));
  CHECK_THROWS_WITH(make_shard_plan(glm, 2, 2, {0, 40}), Catch::Contains("rank is outside"));
  CHECK_THROWS_WITH(make_shard_plan(glm, 2, 0, {30, 41}), Catch::Contains("layer range"));
  CHECK_THROWS_WITH(make_shard_plan(glm, 2, 0, {20, 20}), Catch::Contains("layer range"));
}

TEST_CASE("pipeline stages: uneven layer ranges, embedding first, LM head last", "[model][shard]") {
  const model_config config = glm4_9b_config();
  const shard_plan first = make_shard_plan(config, 2, 1, {0, 27});
  const shard_plan middle = make_shard_plan(config, 1, 0, {27, 37});
  const shard_plan last = make_shard_plan(config, 1, 0, {37, 40});
  CHECK((first.has_embedding && !first.has_lm_head));
  CHECK((!middle.has_embedding && !middle.has_lm_head));
  CHECK((!last.has_embedding && last.has_lm_head));
  CHECK(local_config(config, middle).num_layers == 10);
  CHECK(describe(first) == "tp 1/2 layers 0..27: q heads 16..32, kv heads 1..2, ffn 6848..13696, vocab 75776..151552, embedding");
}

namespace {

kernels::tensor random_tensor(kernels::backend& backend, std::int64_t rows, std::int64_t columns, std::uint32_t seed) {
  kernels::tensor t = backend.alloc(kernels::dtype::f32, {rows, columns});
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = value(generator);
  return t;
}

kernels::tensor linear(kernels::backend& backend, const kernels::tensor& x, const kernels::tensor& w,
                       const kernels::tensor* bias = nullptr) {
  kernels::tensor out = backend.alloc(kernels::dtype::f32, {x.dim(0), w.dim(0)});
  backend.matmul(out, x, w, bias);
  return out;
}

/// Columns [range) of a (T, N) F32 tensor, as a new (T, range.count()) tensor.
kernels::tensor columns_of(kernels::backend& backend, const kernels::tensor& x, index_range range) {
  kernels::tensor out = backend.alloc(kernels::dtype::f32, {x.dim(0), range.count()});
  for (std::int64_t t = 0; t < x.dim(0); ++t)
    for (std::int64_t c = 0; c < range.count(); ++c)
      out.as<float>()[t * range.count() + c] = x.as<float>()[t * x.dim(1) + range.begin + c];
  return out;
}

double max_abs_diff(const kernels::tensor& a, const kernels::tensor& b) {
  REQUIRE(a.shape == b.shape);
  double worst = 0.0;
  for (std::int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(double(a.as<float>()[i]) - b.as<float>()[i]));
  return worst;
}

}  // namespace

TEST_CASE("on glm-f32 the ranks' partial outputs add up to the full layer", "[model][shard]") {
  const checkpoint loaded = load_checkpoint(test::test_data_dir() / "models" / "glm-f32");
  const model_config& config = loaded.config;
  REQUIRE(config.num_heads == 4);
  REQUIRE(config.num_kv_heads == 2);
  auto backend = kernels::make_cpu_backend(1);
  const std::int64_t tokens = 5, hidden = config.hidden_size, q_width = config.num_heads * config.head_dim;
  const kernels::tensor x = random_tensor(*backend, tokens, hidden, 1);
  const kernels::tensor attn = random_tensor(*backend, tokens, q_width, 2);

  for (std::int64_t tp : {2, 4}) {
    for (std::size_t layer = 0; layer < loaded.weights.layers.size(); ++layer) {
      INFO("tp " << tp << ", layer " << layer);
      const layer_weights& full = loaded.weights.layers[layer];
      const kernels::tensor want_o = linear(*backend, attn, full.wo);
      const kernels::tensor want_q = linear(*backend, x, full.wq, &*full.bq);
      const kernels::tensor want_k = linear(*backend, x, full.wk, &*full.bk);
      kernels::tensor gate_up = linear(*backend, x, full.w_gate_up);
      kernels::tensor act = backend->alloc(kernels::dtype::f32, {tokens, config.intermediate_size});
      backend->swiglu(act, gate_up);
      const kernels::tensor want_mlp = linear(*backend, act, full.w_down);

      kernels::tensor sum_o = backend->alloc(kernels::dtype::f32, {tokens, hidden});
      kernels::tensor sum_mlp = backend->alloc(kernels::dtype::f32, {tokens, hidden});
      std::fill_n(sum_o.as<float>(), sum_o.numel(), 0.0f);
      std::fill_n(sum_mlp.as<float>(), sum_mlp.numel(), 0.0f);
      for (std::int64_t rank = 0; rank < tp; ++rank) {
        const shard_plan plan = make_shard_plan(config, tp, rank, {0, config.num_layers});
        const model_weights shard = shard_weights(loaded.weights, config, plan);
        REQUIRE(shard.layers.size() == loaded.weights.layers.size());
        const layer_weights& mine = shard.layers[layer];
        CHECK(mine.wq.shape == std::vector<std::int64_t>{q_width / tp, hidden});
        CHECK(mine.wk.shape == std::vector<std::int64_t>{config.head_dim, hidden});
        CHECK(mine.wo.shape == std::vector<std::int64_t>{hidden, q_width / tp});
        CHECK(mine.w_gate_up.shape == std::vector<std::int64_t>{2 * config.intermediate_size / tp, hidden});
        CHECK(mine.w_down.shape == std::vector<std::int64_t>{hidden, config.intermediate_size / tp});
        // Row slices are views into the mapped file; column slices are copies.
        CHECK(mine.wq.data == static_cast<const char*>(full.wq.data) + plan.q_rows.begin * hidden * 4);
        CHECK(mine.wq.owner == full.wq.owner);
        CHECK(mine.wo.owner != full.wo.owner);

        // Column-parallel: q, k (with bias) are the rank's columns of the full outputs.
        CHECK(max_abs_diff(linear(*backend, x, mine.wq, &*mine.bq), columns_of(*backend, want_q, plan.q_rows)) <= 1e-5);
        CHECK(max_abs_diff(linear(*backend, x, mine.wk, &*mine.bk), columns_of(*backend, want_k, plan.kv_rows)) <= 1e-5);
        // Row-parallel: o_proj and the MLP give partial sums (what the all-reduce adds up).
        const kernels::tensor part_o = linear(*backend, columns_of(*backend, attn, plan.o_columns), mine.wo);
        kernels::tensor part_gate_up = linear(*backend, x, mine.w_gate_up);
        kernels::tensor part_act = backend->alloc(kernels::dtype::f32, {tokens, plan.ffn.count()});
        backend->swiglu(part_act, part_gate_up);
        const kernels::tensor part_mlp = linear(*backend, part_act, mine.w_down);
        backend->add_inplace(sum_o, part_o);
        backend->add_inplace(sum_mlp, part_mlp);
      }
      CHECK(max_abs_diff(sum_o, want_o) <= 1e-4);
      CHECK(max_abs_diff(sum_mlp, want_mlp) <= 1e-4);
    }
  }
}

TEST_CASE("on glm-f32 the vocabulary-split LM head concatenates to the full logits", "[model][shard]") {
  const checkpoint loaded = load_checkpoint(test::test_data_dir() / "models" / "glm-f32");
  auto backend = kernels::make_cpu_backend(1);
  const kernels::tensor h = random_tensor(*backend, 3, loaded.config.hidden_size, 3);
  const kernels::tensor want = linear(*backend, h, loaded.weights.lm_head);
  for (std::int64_t rank = 0; rank < 2; ++rank) {
    const shard_plan plan = make_shard_plan(loaded.config, 2, rank, {0, loaded.config.num_layers});
    const model_weights shard = shard_weights(loaded.weights, loaded.config, plan);
    CHECK(shard.lm_head.dim(0) == loaded.config.vocab_size / 2);
    CHECK(shard.tok_embeddings.shape == loaded.weights.tok_embeddings.shape);
    CHECK(max_abs_diff(linear(*backend, h, shard.lm_head), columns_of(*backend, want, plan.lm_head_rows)) <= 1e-5);
  }
}

TEST_CASE("shard_weights keeps only the stage's layers and ends", "[model][shard]") {
  const checkpoint loaded = load_checkpoint(test::test_data_dir() / "models" / "glm-f32");
  const model_config& config = loaded.config;
  const model_weights first = shard_weights(loaded.weights, config, make_shard_plan(config, 1, 0, {0, 1}));
  const model_weights second = shard_weights(loaded.weights, config, make_shard_plan(config, 1, 0, {1, 2}));
  REQUIRE(first.layers.size() == 1);
  REQUIRE(second.layers.size() == 1);
  CHECK_FALSE(first.tok_embeddings.empty());
  CHECK(first.lm_head.empty());
  CHECK(first.final_norm.empty());
  CHECK(second.tok_embeddings.empty());
  CHECK_FALSE(second.lm_head.empty());
  // tp 1 copies nothing: every tensor is the mapped one.
  CHECK(second.layers[0].wo.data == loaded.weights.layers[1].wo.data);
  CHECK(second.layers[0].w_gate_up.data == loaded.weights.layers[1].w_gate_up.data);
  CHECK(second.layers[0].w_down.data == loaded.weights.layers[1].w_down.data);
  CHECK(first.layers[0].wq.data == loaded.weights.layers[0].wq.data);
}

TEST_CASE("on glm-bf16 copied column slices hold the checkpoint's bytes", "[model][shard]") {
  const checkpoint loaded = load_checkpoint(test::test_data_dir() / "models" / "glm-bf16");
  const model_config& config = loaded.config;
  REQUIRE(loaded.weights.layers[0].wo.type == kernels::dtype::bf16);
  for (std::int64_t rank = 0; rank < 4; ++rank) {
    const shard_plan plan = make_shard_plan(config, 4, rank, {0, config.num_layers});
    const model_weights shard = shard_weights(loaded.weights, config, plan);
    for (std::size_t layer = 0; layer < shard.layers.size(); ++layer) {
      const layer_weights& full = loaded.weights.layers[layer];
      const layer_weights& mine = shard.layers[layer];
      const auto* full_o = full.wo.as<std::uint16_t>();
      const auto* mine_o = mine.wo.as<std::uint16_t>();
      bool same = true;
      for (std::int64_t r = 0; r < config.hidden_size; ++r)
        for (std::int64_t c = 0; c < plan.o_columns.count(); ++c)
          same = same && mine_o[r * plan.o_columns.count() + c] == full_o[r * full.wo.dim(1) + plan.o_columns.begin + c];
      CHECK(same);
      // gate rows then up rows, each the checkpoint's rows.
      const std::size_t row_bytes = static_cast<std::size_t>(config.hidden_size) * 2;
      const auto* stacked = static_cast<const char*>(mine.w_gate_up.data);
      const auto* source = static_cast<const char*>(full.w_gate_up.data);
      const std::size_t half = static_cast<std::size_t>(plan.ffn.count()) * row_bytes;
      CHECK(std::memcmp(stacked, source + plan.gate_rows.begin * row_bytes, half) == 0);
      CHECK(std::memcmp(stacked + half, source + plan.up_rows.begin * row_bytes, half) == 0);
    }
  }
}

}  // namespace glm4::model

namespace glm4::model {

TEST_CASE("shard_weight_bytes adds up to the checkpoint, plus what tensor-parallel ranks replicate", "[model][shard]") {
  for (const auto layout : {checkpoint_layout::chatglm, checkpoint_layout::glm4}) {
    const model_config config = *preset_config("glm-4-9b", layout);
    CAPTURE(layout_name(config.layout));
    const std::uint64_t total = preset_weight_bytes(config);
    const std::uint64_t element = kernels::dtype_size(config.torch_dtype);
    const auto hidden = static_cast<std::uint64_t>(config.hidden_size);
    // Every rank holds the norms; the first stage's ranks all hold the embedding.
    const std::uint64_t norms_per_layer = (config.post_norms ? 4 : 2) * hidden;
    for (std::int64_t tp : {1, 2, 4}) {
      CAPTURE(tp);
      std::uint64_t sum = 0;
      for (std::int64_t rank = 0; rank < tp; ++rank)
        sum += shard_weight_bytes(config, make_shard_plan(config, tp, rank, {0, config.num_layers}));
      const std::uint64_t replicated = (norms_per_layer * static_cast<std::uint64_t>(config.num_layers) + hidden +
                                        static_cast<std::uint64_t>(config.vocab_size) * hidden) * element;
      // Past 2 ranks GLM-4's 2 KV heads are replicated: each further replica holds K and V again.
      const auto kv_width = static_cast<std::uint64_t>(config.num_kv_heads * config.head_dim);
      const std::uint64_t kv_per_copy =
          static_cast<std::uint64_t>(config.num_layers) * (2 * kv_width * hidden + (config.qkv_bias ? 2 * kv_width : 0)) * element;
      const std::uint64_t kv_replicas = std::max<std::int64_t>(1, tp / config.num_kv_heads);
      CHECK(sum == total + static_cast<std::uint64_t>(tp - 1) * replicated + (kv_replicas - 1) * kv_per_copy);
    }
    // Pipeline stages split without overlap.
    const std::uint64_t first = shard_weight_bytes(config, make_shard_plan(config, 1, 0, {0, 17}));
    const std::uint64_t second = shard_weight_bytes(config, make_shard_plan(config, 1, 0, {17, config.num_layers}));
    CHECK(first + second == total);
  }
}

}  // namespace glm4::model
