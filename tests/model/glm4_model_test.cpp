// glm4_model beyond parity: mixed prefill/decode steps and chunked prefill agree with one
// sequence at a time, and bad inputs are refused with a clear error.
#include <catch2/catch.hpp>

#include <cmath>

#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/glm4_model.hpp"
#include "model/sequence_runner.hpp"
#include "tests/model/reference_fixture.hpp"

namespace glm4::model {
namespace {

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(std::isfinite(a[i]));
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return worst;
}

std::vector<float> slice(const std::vector<float>& rows, std::int64_t first, std::int64_t count, std::int64_t vocab) {
  return {rows.begin() + first * vocab, rows.begin() + (first + count) * vocab};
}

struct fixture_model {
  checkpoint loaded;
  std::unique_ptr<kernels::backend> backend;
  std::unique_ptr<glm4_model> model;

  explicit fixture_model(const std::string& dir)
      : loaded(load_checkpoint(test::test_data_dir() / "models" / dir)), backend(kernels::make_cpu_backend(2)),
        model(std::make_unique<glm4_model>(loaded.config, loaded.weights, *backend)) {}
};

const std::vector<std::int32_t> prompt_a{1012, 1014, 300, 301, 302, 5, 77, 900, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22};
const std::vector<std::int32_t> prompt_b{1012, 1014, 1017, 10, 400, 401, 402, 403, 1018};
const std::vector<std::int32_t> prompt_c{1012, 1014, 50, 60, 70};

}  // namespace

TEST_CASE("a mixed step of decode, prefill chunk and new prompt matches separate runs", "[model][forward][batch]") {
  fixture_model f("glm-bf16");
  const std::int64_t vocab = f.loaded.config.vocab_size;

  // Separately: A prefilled then decoding token 42; B in two chunks; C whole.
  sequence_runner run_a(*f.model, 64), run_b(*f.model, 64), run_c(*f.model, 64);
  run_a.prefill(prompt_a);
  const std::vector<float> want_a = run_a.decode(42);
  const std::span<const std::int32_t> b(prompt_b);
  run_b.prefill(b.first(4));
  const std::vector<float> want_b = run_b.prefill(b.subspan(4), logit_rows::all);
  const std::vector<float> want_c = run_c.prefill(prompt_c, logit_rows::last);

  // Together: A and B's first chunk go in one earlier step, then one step holds A's decode row,
  // B's second chunk and all of C, in a shared cache with interleaved blocks.
  kv_cache cache(*f.backend, f.loaded.config, 11, 4);
  const std::vector<std::int32_t> blocks_a{9, 1, 7, 3, 5, 8}, blocks_b{0, 6, 2}, blocks_c{4, 10};
  step_batch first;
  first.block_size = 4;
  add_sequence(first, prompt_a, 0, blocks_a, logit_rows::none);
  add_sequence(first, b.first(4), 0, blocks_b, logit_rows::none);
  f.model->forward(first, cache);

  step_batch mixed;
  mixed.block_size = 4;
  const std::vector<std::int32_t> next_a{42};
  add_sequence(mixed, next_a, static_cast<std::int32_t>(prompt_a.size()), blocks_a, logit_rows::last);
  add_sequence(mixed, b.subspan(4), 4, blocks_b, logit_rows::all);
  add_sequence(mixed, prompt_c, 0, blocks_c, logit_rows::last);
  const std::vector<float> got = f.model->forward_logits(mixed, cache);
  const auto num_b = static_cast<std::int64_t>(prompt_b.size()) - 4;
  REQUIRE(static_cast<std::int64_t>(got.size()) == (1 + num_b + 1) * vocab);
  CHECK(max_abs_diff(slice(got, 0, 1, vocab), want_a) <= 1e-5);
  CHECK(max_abs_diff(slice(got, 1, num_b, vocab), want_b) <= 1e-5);
  CHECK(max_abs_diff(slice(got, 1 + num_b, 1, vocab), want_c) <= 1e-5);
}

TEST_CASE("prefill in chunks gives the logits of one prefill", "[model][forward]") {
  fixture_model f("glm4-f32");
  const std::int64_t vocab = f.loaded.config.vocab_size;
  sequence_runner whole(*f.model, 32, 16), chunked(*f.model, 32, 4);
  const std::vector<float> want = whole.prefill(prompt_a, logit_rows::all);
  const std::span<const std::int32_t> ids(prompt_a);
  std::vector<float> got;
  for (std::size_t start = 0; start < ids.size(); start += 5) {
    const auto part = chunked.prefill(ids.subspan(start, std::min<std::size_t>(5, ids.size() - start)), logit_rows::all);
    got.insert(got.end(), part.begin(), part.end());
  }
  CHECK(max_abs_diff(got, want) <= 1e-5);
  CHECK(chunked.num_tokens() == static_cast<std::int64_t>(prompt_a.size()));
  CHECK(static_cast<std::int64_t>(got.size()) == static_cast<std::int64_t>(prompt_a.size()) * vocab);
}

TEST_CASE("empty steps and steps without logit rows run", "[model][forward]") {
  fixture_model f("glm-f32");
  kv_cache cache(*f.backend, f.loaded.config, 2, 16);
  step_batch empty;
  CHECK(f.model->forward(empty, cache).shape == std::vector<std::int64_t>{0, f.loaded.config.vocab_size});
  step_batch no_rows;
  add_sequence(no_rows, prompt_c, 0, std::vector<std::int32_t>{1}, logit_rows::none);
  CHECK(f.model->forward_logits(no_rows, cache).empty());
}

TEST_CASE("glm4_model refuses bad weights, batches and caches", "[model][forward]") {
  fixture_model f("glm-f32");
  model_weights broken = f.loaded.weights;
  broken.layers[1].wk = kernels::view_rows(broken.layers[1].wk, 0, 4);
  CHECK_THROWS_WITH(glm4_model(f.loaded.config, broken, *f.backend), Catch::Contains("layers.1.wk"));
  broken = f.loaded.weights;
  broken.layers[0].bq.reset();
  CHECK_THROWS_WITH(glm4_model(f.loaded.config, broken, *f.backend), Catch::Contains("layers.0.bq"));
  broken = f.loaded.weights;
  broken.layers.pop_back();
  CHECK_THROWS_AS(glm4_model(f.loaded.config, broken, *f.backend), std::invalid_argument);

  kv_cache cache(*f.backend, f.loaded.config, 2, 8);
  step_batch batch;  // block size 16, the cache has 8
  add_sequence(batch, prompt_c, 0, std::vector<std::int32_t>{0}, logit_rows::last);
  CHECK_THROWS_AS(f.model->forward(batch, cache), std::invalid_argument);
  step_batch out_of_vocab;
  out_of_vocab.block_size = 8;
  const std::vector<std::int32_t> bad_ids{1, 5000};
  add_sequence(out_of_vocab, bad_ids, 0, std::vector<std::int32_t>{0}, logit_rows::last);
  CHECK_THROWS_AS(f.model->forward(out_of_vocab, cache), std::out_of_range);

  sequence_runner runner(*f.model, 8, 4);
  CHECK_THROWS_AS(runner.prefill(prompt_a), std::length_error);
  CHECK(runner.num_tokens() == 0);
}

TEST_CASE("kv_cache sizes its pool by blocks", "[model][kv_cache]") {
  fixture_model f("glm-f32");
  const model_config& config = f.loaded.config;
  kv_cache cache(*f.backend, config, 3, 16);
  CHECK(cache.num_layers() == config.num_layers);
  CHECK(cache.num_slots() == 48);
  CHECK(cache.type() == kernels::dtype::f32);
  CHECK(cache.keys(0).shape == std::vector<std::int64_t>{3, 16, config.num_kv_heads, config.head_dim});
  const auto elements = static_cast<std::size_t>(2 * config.num_layers * 16 * config.num_kv_heads * config.head_dim);
  CHECK(kv_cache::bytes_per_block(config, 16, kernels::dtype::f32) == elements * 4);
  CHECK(kv_cache::bytes_per_block(config, 16, kernels::dtype::bf16) == elements * 2);
  CHECK(kv_cache::bytes_per_block(config, 16, kernels::dtype::f16) == elements * 2);
  kv_cache half(*f.backend, config, 3, 16, kernels::dtype::bf16);
  CHECK(half.keys(1).type == kernels::dtype::bf16);
  CHECK(half.values(1).nbytes() * 2 == cache.values(1).nbytes());
  CHECK_THROWS_AS(kv_cache(*f.backend, config, 0, 16), std::invalid_argument);
  CHECK_THROWS_AS(kv_cache(*f.backend, config, 3, 16, kernels::dtype::i32), std::invalid_argument);
}

TEST_CASE("the KV cache type defaults to F32 on a CPU and to the stored weights' type on a GPU", "[model][kv_cache]") {
  using kernels::device_kind;
  using kernels::dtype;
  for (const dtype weights : {dtype::f32, dtype::f16, dtype::bf16}) {
    CAPTURE(kernels::dtype_name(weights));
    CHECK(default_kv_cache_dtype(device_kind::cpu, weights) == dtype::f32);
    CHECK(default_kv_cache_dtype(device_kind::cuda, weights) == weights);
  }

  fixture_model f("glm-bf16");
  CHECK(f.model->kv_cache_dtype() == dtype::f32);  // on the CPU backend
  f.model->set_kv_cache_dtype(dtype::bf16);
  sequence_runner runner(*f.model, 32);
  CHECK(runner.prefill(prompt_c).size() == static_cast<std::size_t>(f.loaded.config.vocab_size));
  CHECK_THROWS_AS(f.model->set_kv_cache_dtype(dtype::i32), std::invalid_argument);
}

}  // namespace glm4::model
