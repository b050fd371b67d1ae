// Decode steps padded to recorded shapes: which steps qualify, what padding looks like, and that a
// model running its decode steps padded (record_decode_steps, as with CUDA graphs) gives the
// logits of running them as they are, whole or split into pipeline stages, while prefills in
// between grow its buffers; and, on a backend that replays recordings as CUDA graphs do
// (tests/kernels/replaying_backend.hpp), that the replayed steps give the same logits and never
// name a buffer that has moved, the KV cache included.
#include "model/decode_padding.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "model/sequence_runner.hpp"
#include "model/sharded_layout.hpp"
#include "tests/kernels/replaying_backend.hpp"
#include "tests/model/random_model.hpp"

namespace glm4::model {
namespace {

constexpr std::int32_t block_size = 4;
constexpr std::int64_t num_blocks = 64;

step_batch decode_of(std::int32_t num_seqs, std::int32_t blocks_each) {
  step_batch batch;
  batch.block_size = block_size;
  for (std::int32_t s = 0; s < num_seqs; ++s) {
    std::vector<std::int32_t> blocks;
    for (std::int32_t b = 0; b < blocks_each; ++b) blocks.push_back(s * blocks_each + b);
    add_sequence(batch, std::vector<std::int32_t>{7 + s}, blocks_each * block_size - 1, blocks, logit_rows::last);
  }
  return batch;
}

enum class decode_mode { as_is, padded, replayed };

// The layers of a layout (one rank per stage) with their caches; step() runs a batch through them.
class stages_runner {
 public:
  stages_runner(const test::random_model& made, std::int64_t num_stages, decode_mode mode) {
    std::vector<stage_shape> stages;
    for (const index_range& layers : split_layers(made.config.num_layers, num_stages)) stages.push_back({layers, 1});
    ranks_ = build_sharded_layout(made.config, made.weights, stages,
                                  [&](std::size_t, std::int64_t) -> std::unique_ptr<kernels::backend> {
                                    if (mode != decode_mode::replayed) return kernels::make_cpu_backend(1);
                                    auto made_backend = test::make_replaying_backend();
                                    replaying_.push_back(made_backend.get());
                                    return made_backend;
                                  });
    for (auto& stage : ranks_) stage[0].model->record_decode_steps(mode != decode_mode::as_is);
    replace_caches();
  }

  /// New, empty caches; the old ones are freed first, so the new ones may land at their addresses.
  void replace_caches() {
    caches_.clear();
    for (auto& stage : ranks_)
      caches_.push_back(std::make_unique<kv_cache>(*stage[0].backend, stage[0].model->config(), num_blocks, block_size));
  }

  /// Replays over every stage's backend (0 unless replayed).
  std::size_t num_replays() const {
    std::size_t replays = 0;
    for (const test::replaying_backend* backend : replaying_) replays += backend->num_replays();
    return replays;
  }

  std::vector<float> step(const step_batch& batch) {
    std::vector<float> hidden;
    for (std::size_t s = 0; s < ranks_.size(); ++s) {
      glm4_model& model = *ranks_[s][0].model;
      if (s + 1 == ranks_.size()) return model.forward_logits(batch, *caches_[s], hidden);
      const kernels::tensor& out = model.forward(batch, *caches_[s], hidden);
      hidden.resize(static_cast<std::size_t>(out.numel()));
      model.backend().download(out, hidden.data());
    }
    return hidden;
  }

 private:
  std::vector<test::replaying_backend*> replaying_;
  std::vector<std::vector<rank_model>> ranks_;
  std::vector<std::unique_ptr<kv_cache>> caches_;
};

}  // namespace

TEST_CASE("only steps of one new token per sequence get a recorded shape, rounded up to powers of two",
          "[model][decode_padding]") {
  CHECK(recordable_decode_shape(decode_of(1, 1)) == decode_shape{1, 1});
  CHECK(recordable_decode_shape(decode_of(3, 3)) == decode_shape{4, 4});
  CHECK(recordable_decode_shape(decode_of(5, 2)) == decode_shape{8, 2});
  CHECK(decode_shape{4, 4}.key() != decode_shape{4, 8}.key());
  step_batch prefill;
  prefill.block_size = block_size;
  add_sequence(prefill, std::vector<std::int32_t>{1, 2}, 0, std::vector<std::int32_t>{0}, logit_rows::last);
  CHECK_FALSE(recordable_decode_shape(prefill));
  CHECK_FALSE(recordable_decode_shape(step_batch{}));
  CHECK_FALSE(recordable_decode_shape(decode_of(max_recorded_rows + 1, 1)));
  CHECK(recordable_decode_shape(decode_of(max_recorded_rows, 1)) == decode_shape{max_recorded_rows, 1});
}

TEST_CASE("padding rows follow the real ones, store nothing and read only block 0", "[model][decode_padding]") {
  const step_batch batch = decode_of(3, 3);
  const step_batch padded = pad_decode_batch(batch, {4, 4});
  CHECK(padded.num_tokens() == 4);
  CHECK(padded.num_seqs() == 4);
  CHECK(padded.max_blocks_per_seq == 4);
  CHECK(padded.token_ids == std::vector<std::int32_t>{7, 8, 9, 0});
  CHECK(padded.slot_mapping == std::vector<std::int32_t>{batch.slot_mapping[0], batch.slot_mapping[1], batch.slot_mapping[2], -1});
  CHECK(padded.positions.back() == 0);
  CHECK(padded.query_start == std::vector<std::int32_t>{0, 1, 2, 3, 4});
  CHECK(padded.context_len == std::vector<std::int32_t>{12, 12, 12, 1});
  CHECK(padded.logit_rows == batch.logit_rows);
  // Each real row's blocks, widened to the stride; the padding row's are all block 0.
  CHECK(std::vector<std::int32_t>(padded.block_table.begin() + 4, padded.block_table.begin() + 8) ==
        std::vector<std::int32_t>{3, 4, 5, 0});
  CHECK(std::vector<std::int32_t>(padded.block_table.begin() + 12, padded.block_table.end()) == std::vector<std::int32_t>(4, 0));
  CHECK_THROWS_WITH(pad_decode_batch(batch, {2, 4}), Catch::Contains("does not fit the shape"));
}

TEST_CASE("a model running decode steps padded, or replaying them, gives the logits of running them as they are",
          "[model][decode_padding]") {
  const test::random_model made = test::make_random_model(checkpoint_layout::glm4);
  const std::int64_t num_stages = GENERATE(1, 2);
  const decode_mode mode = GENERATE(decode_mode::padded, decode_mode::replayed);
  CAPTURE(num_stages, mode == decode_mode::replayed);
  stages_runner plain(made, num_stages, decode_mode::as_is), padded(made, num_stages, mode);
  const auto vocab = static_cast<std::size_t>(made.config.vocab_size);

  // Sequence s owns blocks [8s, 8s + 8). Three prompts, then decode; a fourth and fifth prompt
  // arrive later (a prefill larger than any step before grows the scratch), then all five decode.
  std::vector<std::vector<std::int32_t>> sequences = {{3, 17, 256}, {5, 6, 7, 8, 9}, {44, 2}};
  const auto blocks_of = [](std::size_t s) {
    std::vector<std::int32_t> blocks;
    for (std::int32_t b = 0; b < 8; ++b) blocks.push_back(static_cast<std::int32_t>(s) * 8 + b);
    return blocks;
  };
  std::vector<std::int32_t> cached(5, 0);
  float worst = 0.0f;
  const auto run = [&](const step_batch& batch, const std::vector<std::size_t>& owners) {
    const std::vector<float> want = plain.step(batch), got = padded.step(batch);
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
    for (std::size_t r = 0; r < owners.size(); ++r) {
      const auto row = std::span<const float>(want).subspan(r * vocab, vocab);
      const auto best = std::max_element(row.begin(), row.end()) - row.begin();
      sequences[owners[r]].push_back(static_cast<std::int32_t>(best));
    }
  };
  const auto prefill = [&](std::vector<std::size_t> which) {
    step_batch batch;
    batch.block_size = block_size;
    for (std::size_t s : which) {
      add_sequence(batch, sequences[s], 0, blocks_of(s), logit_rows::last);
      cached[s] = static_cast<std::int32_t>(sequences[s].size());
    }
    run(batch, which);
  };
  const auto decode = [&](std::vector<std::size_t> which) {
    step_batch batch;
    batch.block_size = block_size;
    for (std::size_t s : which) {
      add_sequence(batch, std::vector<std::int32_t>{sequences[s].back()}, cached[s], blocks_of(s), logit_rows::last);
      ++cached[s];
    }
    REQUIRE(recordable_decode_shape(batch));
    run(batch, which);
  };
  prefill({0, 1, 2});
  for (int i = 0; i < 4; ++i) decode({0, 1, 2});  // 3 rows padded to 4
  sequences.push_back(std::vector<std::int32_t>(21, 11));
  sequences.push_back({1, 2, 3});
  prefill({3, 4});
  for (int i = 0; i < 4; ++i) decode({0, 1, 2, 3, 4});  // 5 rows padded to 8
  decode({4});
  INFO("max |padded - plain| = " << worst);
  CHECK(worst <= 1e-5f);
  // Replayed: the 3 shapes were recorded once each (per stage), the other 6 steps replayed.
  CHECK(padded.num_replays() == (mode == decode_mode::replayed ? static_cast<std::size_t>(6 * num_stages) : 0u));

  // A new cache (sequence 0 prefilled into it again) is not written through old recordings.
  plain.replace_caches();
  padded.replace_caches();
  const std::size_t replays_before = padded.num_replays();
  std::fill(cached.begin(), cached.end(), 0);
  prefill({0, 1, 2});
  for (int i = 0; i < 3; ++i) decode({0, 1, 2});
  INFO("max |padded - plain| after the caches were replaced = " << worst);
  CHECK(worst <= 1e-5f);
  CHECK(padded.num_replays() - replays_before == (mode == decode_mode::replayed ? static_cast<std::size_t>(2 * num_stages) : 0u));
}

}  // namespace glm4::model

namespace glm4::model {

TEST_CASE("two models on one replaying backend replay their own recordings", "[model][decode_padding]") {
  const test::random_model first_made = test::make_random_model(checkpoint_layout::glm4, 1);
  const test::random_model second_made = test::make_random_model(checkpoint_layout::glm4, 2);
  auto shared = test::make_replaying_backend();
  auto direct_backend = kernels::make_cpu_backend(1);
  glm4_model first(first_made.config, first_made.weights, *shared), second(second_made.config, second_made.weights, *shared);
  glm4_model first_direct(first_made.config, first_made.weights, *direct_backend);
  glm4_model second_direct(second_made.config, second_made.weights, *direct_backend);
  first.record_decode_steps(true);
  second.record_decode_steps(true);
  sequence_runner a(first, 32, block_size), b(second, 32, block_size);
  sequence_runner a_direct(first_direct, 32, block_size), b_direct(second_direct, 32, block_size);
  const std::vector<std::int32_t> prompt{3, 1, 4, 1, 5};
  CHECK(a.prefill(prompt) == a_direct.prefill(prompt));
  CHECK(b.prefill(prompt) == b_direct.prefill(prompt));
  // Same shapes, alternating: each step must replay its own model's recording.
  for (std::int32_t token : {9, 2, 6, 5, 3}) {
    CAPTURE(token);
    CHECK(a.decode(token) == a_direct.decode(token));
    CHECK(b.decode(token) == b_direct.decode(token));
  }
  CHECK(shared->num_replays() > 0);
}

}  // namespace glm4::model
