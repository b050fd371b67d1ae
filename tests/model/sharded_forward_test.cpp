// Sharded layouts against the same model run whole: for tp in {1, 2, 4} and pp in {1, 2, 3}, in
// all three layouts, every step's logits agree within 1e-4 (F32) and every greedy pick is the
// same. Ranks run on their own threads, stage after stage, as device actors run them.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <future>

#include "model/sequence_runner.hpp"
#include "model/sharded_layout.hpp"
#include "tests/model/random_model.hpp"

namespace glm4::model {
namespace {

constexpr std::int32_t block_size = 4;
constexpr std::int64_t num_blocks = 24;

// Two sequences sharing each step: a prefill of A with all rows, B's prompt in two chunks while
// A decodes, then both decode. Blocks interleave in one pool.
struct workload {
  std::vector<std::int32_t> prompt_a{3, 17, 256, 901, 44, 44, 12, 600, 7, 1000, 2};
  std::vector<std::int32_t> prompt_b{5, 6, 7, 8, 9, 10, 11};
  std::vector<std::int32_t> blocks_a{0, 2, 4, 6, 8, 10}, blocks_b{1, 3, 5, 7, 9, 11};
  int num_decode_steps = 6;
};

/// Runs the workload through `forward` (one step_batch in, its logits (R, V) out), feeding back
/// the greedy picks of `greedy_source` when given, else its own; returns every step's logits.
template <class Forward>
std::vector<std::vector<float>> run_workload(const workload& w, std::int64_t vocab, Forward&& forward,
                                             const std::vector<std::vector<float>>* greedy_source = nullptr) {
  std::vector<std::vector<float>> steps;
  auto pick = [&](std::size_t step, std::int64_t row) {
    const auto& logits = greedy_source ? (*greedy_source)[step] : steps[step];
    return argmax(std::span<const float>(logits).subspan(static_cast<std::size_t>(row * vocab), static_cast<std::size_t>(vocab)));
  };
  const std::span<const std::int32_t> b(w.prompt_b);
  std::int32_t length_a = static_cast<std::int32_t>(w.prompt_a.size()), length_b = 4;
  step_batch first;
  first.block_size = block_size;
  add_sequence(first, w.prompt_a, 0, w.blocks_a, logit_rows::all);
  add_sequence(first, b.first(4), 0, w.blocks_b, logit_rows::none);
  steps.push_back(forward(first));
  std::int32_t next_a = pick(0, length_a - 1);

  step_batch second;
  second.block_size = block_size;
  add_sequence(second, std::vector<std::int32_t>{next_a}, length_a, w.blocks_a, logit_rows::last);
  add_sequence(second, b.subspan(4), length_b, w.blocks_b, logit_rows::last);
  steps.push_back(forward(second));
  ++length_a;
  length_b = static_cast<std::int32_t>(w.prompt_b.size());
  next_a = pick(1, 0);
  std::int32_t next_b = pick(1, 1);

  for (int i = 0; i < w.num_decode_steps; ++i) {
    step_batch decode;
    decode.block_size = block_size;
    add_sequence(decode, std::vector<std::int32_t>{next_a}, length_a++, w.blocks_a, logit_rows::last);
    add_sequence(decode, std::vector<std::int32_t>{next_b}, length_b++, w.blocks_b, logit_rows::last);
    steps.push_back(forward(decode));
    next_a = pick(steps.size() - 1, 0);
    next_b = pick(steps.size() - 1, 1);
  }
  return steps;
}

// The ranks of a layout with their caches; step() runs a batch through every stage.
class layout_runner {
 public:
  layout_runner(const test::random_model& made, std::int64_t tp, std::int64_t pp) {
    std::vector<stage_shape> stages;
    for (const index_range& layers : split_layers(made.config.num_layers, pp)) stages.push_back({layers, tp});
    ranks_ = build_sharded_layout(made.config, made.weights, stages,
                                  [](std::size_t, std::int64_t) { return kernels::make_cpu_backend(1); });
    for (auto& stage : ranks_) {
      auto& caches = caches_.emplace_back();
      for (auto& rank : stage)
        caches.push_back(std::make_unique<kv_cache>(*rank.backend, rank.model->config(), num_blocks, block_size));
    }
  }

  std::vector<float> step(const step_batch& batch) {
    std::vector<float> hidden;
    for (std::size_t s = 0; s < ranks_.size(); ++s) {
      const bool last = s + 1 == ranks_.size();
      std::vector<std::future<std::vector<float>>> outputs;
      for (std::size_t r = 0; r < ranks_[s].size(); ++r)
        outputs.push_back(std::async(std::launch::async, [&, s, r] {
          rank_model& rank = ranks_[s][r];
          kv_cache& cache = *caches_[s][r];
          try {
            if (last) return rank.model->forward_logits(batch, cache, hidden);
            const kernels::tensor& out = rank.model->forward(batch, cache, hidden);
            std::vector<float> host(static_cast<std::size_t>(out.numel()));
            rank.model->backend().download(out, host.data());
            return host;
          } catch (const std::exception& error) {
            // As a device actor does: its peers must not wait for it in a collective.
            if (rank.tensor_parallel) rank.tensor_parallel->abort(error.what());
            throw;
          }
        }));
      std::vector<std::vector<float>> results;
      for (auto& output : outputs) results.push_back(output.get());
      // Every rank of a stage holds the same hidden bits after the all-reduce; only rank 0 gets
      // the gathered logits.
      for (std::size_t r = 1; r < results.size(); ++r) {
        if (last) {
          REQUIRE(results[r].empty());
          continue;
        }
        REQUIRE(std::memcmp(results[r].data(), results[0].data(), results[0].size() * sizeof(float)) == 0);
      }
      hidden = std::move(results[0]);
    }
    return hidden;
  }

 private:
  std::vector<std::vector<rank_model>> ranks_;
  std::vector<std::vector<std::unique_ptr<kv_cache>>> caches_;
};

}  // namespace

TEST_CASE("tp x pp layouts give the single-device logits and greedy picks", "[model][shard][parity]") {
  const auto layout = GENERATE(checkpoint_layout::glm, checkpoint_layout::glm4, checkpoint_layout::chatglm);
  CAPTURE(layout_name(layout));
  const test::random_model made = test::make_random_model(layout);
  REQUIRE(made.config.num_layers >= 3);
  const std::int64_t vocab = made.config.vocab_size;
  const workload w;

  auto backend = kernels::make_cpu_backend(1);
  glm4_model whole(made.config, made.weights, *backend);
  kv_cache whole_cache(*backend, whole.config(), num_blocks, block_size);
  const auto want = run_workload(w, vocab, [&](const step_batch& batch) { return whole.forward_logits(batch, whole_cache); });

  for (std::int64_t tp : {1, 2, 4})
    for (std::int64_t pp : {1, 2, 3}) {
      CAPTURE(tp, pp);
      layout_runner runner(made, tp, pp);
      // Teacher-forced by the whole model's picks, so one differing pick cannot hide later ones.
      const auto got = run_workload(w, vocab, [&](const step_batch& batch) { return runner.step(batch); }, &want);
      REQUIRE(got.size() == want.size());
      for (std::size_t step = 0; step < want.size(); ++step) {
        CAPTURE(step);
        REQUIRE(got[step].size() == want[step].size());
        double worst = 0.0;
        for (std::size_t i = 0; i < want[step].size(); ++i) {
          REQUIRE(std::isfinite(got[step][i]));
          worst = std::max(worst, std::fabs(static_cast<double>(got[step][i]) - want[step][i]));
        }
        CHECK(worst <= 1e-4);
        const auto rows = static_cast<std::int64_t>(want[step].size()) / vocab;
        for (std::int64_t row = 0; row < rows; ++row) {
          const auto at = static_cast<std::size_t>(row * vocab), count = static_cast<std::size_t>(vocab);
          CHECK(argmax(std::span(got[step]).subspan(at, count)) == argmax(std::span(want[step]).subspan(at, count)));
        }
      }
    }
}

TEST_CASE("a tied LM head is each rank's slice of the embedding", "[model][shard][parity]") {
  test::random_model made = test::make_random_model(checkpoint_layout::glm);
  made.config.tie_word_embeddings = true;
  made.weights.lm_head = made.weights.tok_embeddings;
  const workload w;
  auto backend = kernels::make_cpu_backend(1);
  glm4_model whole(made.config, made.weights, *backend);
  kv_cache whole_cache(*backend, whole.config(), num_blocks, block_size);
  const auto want =
      run_workload(w, made.config.vocab_size, [&](const step_batch& batch) { return whole.forward_logits(batch, whole_cache); });
  for (std::int64_t pp : {1, 2}) {
    CAPTURE(pp);
    layout_runner runner(made, 2, pp);
    const auto got = run_workload(w, made.config.vocab_size, [&](const step_batch& batch) { return runner.step(batch); }, &want);
    for (std::size_t step = 0; step < want.size(); ++step) {
      CAPTURE(step);
      REQUIRE(got[step].size() == want[step].size());
      double worst = 0.0;
      for (std::size_t i = 0; i < want[step].size(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(got[step][i]) - want[step][i]));
      CHECK(worst <= 1e-4);
    }
  }
}

TEST_CASE("split_layers splits like cluster.toml's default and refuses empty stages", "[model][shard]") {
  CHECK(split_layers(4, 3) == std::vector<index_range>{{0, 1}, {1, 2}, {2, 4}});
  CHECK(split_layers(40, 3) == std::vector<index_range>{{0, 13}, {13, 26}, {26, 40}});
  CHECK(split_layers(40, 1) == std::vector<index_range>{{0, 40}});
  CHECK_THROWS_AS(split_layers(2, 3), std::invalid_argument);
}

TEST_CASE("a layout whose stages skip layers is refused", "[model][shard]") {
  const test::random_model made = test::make_random_model(checkpoint_layout::glm);
  const auto cpu = [](std::size_t, std::int64_t) { return kernels::make_cpu_backend(1); };
  CHECK_THROWS_WITH(build_sharded_layout(made.config, made.weights, {{{0, 2}, 1}, {{3, 4}, 1}}, cpu),
                    Catch::Contains("starts at layer 3, expected 2"));
  CHECK_THROWS_WITH(build_sharded_layout(made.config, made.weights, {{{0, 3}, 1}}, cpu), Catch::Contains("0..3"));
  CHECK_THROWS_WITH(build_sharded_layout(made.config, made.weights, {{{0, 4}, 3}}, cpu), Catch::Contains("do not split over 3"));
}

TEST_CASE("a later stage refuses a step without hidden states, and a whole model refuses them", "[model][shard]") {
  const test::random_model made = test::make_random_model(checkpoint_layout::glm);
  auto ranks = build_sharded_layout(made.config, made.weights, {{{0, 2}, 1}, {{2, 4}, 1}},
                                    [](std::size_t, std::int64_t) { return kernels::make_cpu_backend(1); });
  glm4_model& second = *ranks[1][0].model;
  kv_cache cache(*ranks[1][0].backend, second.config(), 4, block_size);
  step_batch batch;
  batch.block_size = block_size;
  add_sequence(batch, std::vector<std::int32_t>{1, 2}, 0, std::vector<std::int32_t>{0}, logit_rows::last);
  CHECK_THROWS_WITH(second.forward(batch, cache), Catch::Contains("needs the previous stage's hidden states"));
  const std::vector<float> wrong(3, 0.0f);
  CHECK_THROWS_WITH(second.forward(batch, cache, wrong), Catch::Contains("hidden states of 3 values"));
}

TEST_CASE("a stage's ranks get their group from the factory, and refuse one for another device's memory",
          "[model][shard]") {
  // Shared memory that claims to reduce GPU tensors, as an NCCL group handed to CPU ranks would.
  struct gpu_claiming : kernels::comm::communicator {
    explicit gpu_claiming(std::shared_ptr<kernels::comm::communicator> inner) : inner(std::move(inner)) {}
    int rank() const override { return inner->rank(); }
    int size() const override { return inner->size(); }
    kernels::device_kind memory() const override { return kernels::device_kind::cuda; }
    void all_reduce_sum(kernels::tensor& x) override { inner->all_reduce_sum(x); }
    void gather_columns(const kernels::tensor& local, kernels::tensor* full) override { inner->gather_columns(local, full); }
    void broadcast_host(std::span<std::int32_t> values) override { inner->broadcast_host(values); }
    void abort(const std::string& why) override { inner->abort(why); }
    std::shared_ptr<kernels::comm::communicator> inner;
  };
  const test::random_model made = test::make_random_model(checkpoint_layout::glm4);
  const std::vector<stage_shape> stages{{{0, made.config.num_layers}, 2}};
  const auto cpu = [](std::size_t, std::int64_t) { return kernels::make_cpu_backend(1); };
  std::size_t num_calls = 0;
  const auto ranks = build_sharded_layout(made.config, made.weights, stages, cpu,
                                          [&](std::size_t stage, const std::vector<kernels::backend*>& backends) {
                                            ++num_calls;
                                            CHECK(stage == 0);
                                            CHECK(backends.size() == 2);
                                            return kernels::comm::make_shared_memory_group(2);
                                          });
  CHECK(num_calls == 1);
  CHECK(ranks[0][1].tensor_parallel->rank() == 1);
  CHECK_THROWS_WITH(build_sharded_layout(made.config, made.weights, stages, cpu,
                                         [](std::size_t, const std::vector<kernels::backend*>&) {
                                           std::vector<std::shared_ptr<kernels::comm::communicator>> group;
                                           for (auto& member : kernels::comm::make_shared_memory_group(2))
                                             group.push_back(std::make_shared<gpu_claiming>(member));
                                           return group;
                                         }),
                    Catch::Contains("was given a communicator for GPU memory"));
}

TEST_CASE("ranks built without a group join it later, and run only once they have", "[model][shard]") {
  const test::random_model made = test::make_random_model(checkpoint_layout::glm);
  auto ranks = build_sharded_layout(made.config, made.weights, {{{0, made.config.num_layers}, 2}},
                                    [](std::size_t, std::int64_t) { return kernels::make_cpu_backend(1); },
                                    [](std::size_t, const std::vector<kernels::backend*>&) {
                                      return std::vector<std::shared_ptr<kernels::comm::communicator>>{};
                                    });
  glm4_model& first = *ranks[0][0].model;
  CHECK(first.tensor_parallel() == nullptr);
  kv_cache cache(*ranks[0][0].backend, first.config(), 4, block_size);
  step_batch batch;
  batch.block_size = block_size;
  add_sequence(batch, std::vector<std::int32_t>{1, 2}, 0, std::vector<std::int32_t>{0}, logit_rows::last);
  CHECK_THROWS_WITH(first.forward(batch, cache), Catch::Contains("rank 0 of 2 has not joined its group"));

  const std::vector<std::uint8_t> id = ranks[0][0].backend->make_group_id();
  CHECK_THROWS_WITH(first.join_tensor_parallel(ranks[0][0].backend->join_group({id, 1, 2})),
                    Catch::Contains("needs a communicator of that rank and size"));
  const std::vector<std::uint8_t> other = ranks[0][0].backend->make_group_id();
  first.join_tensor_parallel(ranks[0][0].backend->join_group({other, 0, 2}));
  CHECK(first.tensor_parallel()->rank() == 0);
  CHECK_THROWS_WITH(first.join_tensor_parallel(ranks[0][1].backend->join_group({other, 1, 2})),
                    Catch::Contains("joined its tensor-parallel group already"));
}

TEST_CASE("activation_bytes is what a rank's scratch holds for a step of that size", "[model][shard][memory]") {
  const test::random_model made = test::make_random_model(checkpoint_layout::chatglm);
  const std::int64_t tp = GENERATE(1, 2);
  CAPTURE(tp);
  auto ranks = build_sharded_layout(made.config, made.weights, {{{0, made.config.num_layers}, tp}},
                                    [](std::size_t, std::int64_t) { return kernels::make_cpu_backend(1); });
  // Three sequences, 11 tokens, one logit row each.
  step_batch batch;
  batch.block_size = block_size;
  add_sequence(batch, std::vector<std::int32_t>{1, 2, 3, 4, 5, 6}, 0, std::vector<std::int32_t>{0, 1}, logit_rows::last);
  add_sequence(batch, std::vector<std::int32_t>{7, 8, 9, 10}, 0, std::vector<std::int32_t>{2}, logit_rows::last);
  add_sequence(batch, std::vector<std::int32_t>{11}, 0, std::vector<std::int32_t>{3}, logit_rows::last);
  std::vector<std::future<void>> steps;
  std::vector<std::unique_ptr<kv_cache>> caches;
  for (auto& rank : ranks[0]) caches.push_back(std::make_unique<kv_cache>(*rank.backend, rank.model->config(), 4, block_size));
  for (std::size_t r = 0; r < ranks[0].size(); ++r)
    steps.push_back(std::async(std::launch::async, [&, r] { ranks[0][r].model->forward_logits(batch, *caches[r]); }));
  for (auto& step : steps) step.get();
  for (const rank_model& rank : ranks[0]) {
    CAPTURE(rank.plan.tp_rank);
    const std::uint64_t tables = 4 * batch.block_table.size();
    CHECK(rank.model->scratch_bytes() == activation_bytes(made.config, rank.plan, 11, 3) + tables);
  }
}

}  // namespace glm4::model
