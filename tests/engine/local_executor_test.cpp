// The engine on the real forward (fixture glm-f32): batch invariance, prefix-cache hits,
// preemption, copy-on-write of forked choices, stop strings on real text.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "engine/llm_engine.hpp"
#include "engine/local_executor.hpp"
#include "engine/logits_processors.hpp"
#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "tests/kernels/replaying_backend.hpp"

namespace glm4::engine {
namespace {

const std::filesystem::path model_dir = std::filesystem::path(GLM4_TEST_DATA_DIR) / "models" / "glm-f32";

struct fixture {
  model::checkpoint checkpoint = model::load_checkpoint(model_dir);
  model::tokenizer tok = model::tokenizer::load(model_dir);
  std::unique_ptr<kernels::backend> backend = kernels::make_cpu_backend(2);
  model::glm4_model forward{checkpoint.config, checkpoint.weights, *backend};
  std::vector<token_id> eos = checkpoint.generation.eos_token_ids;
};

fixture& shared_fixture() {
  static fixture f;
  return f;
}

std::vector<token_id> random_tokens(std::mt19937& rng, std::int64_t n) {
  std::uniform_int_distribution<token_id> id(0, 999);
  std::vector<token_id> ids(static_cast<std::size_t>(n));
  for (auto& t : ids) t = id(rng);
  return ids;
}

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  float worst = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

engine_config config_for(const fixture& f, std::int32_t num_blocks, std::int32_t budget, bool prefix_caching) {
  engine_config c;
  c.scheduler.num_blocks = num_blocks;
  c.scheduler.block_size = 4;
  c.scheduler.max_num_batched_tokens = budget;
  c.scheduler.max_num_seqs = 8;
  c.scheduler.max_model_len = 256;
  c.scheduler.enable_prefix_caching = prefix_caching;
  c.eos_token_ids = f.eos;
  c.vocab_size = f.checkpoint.config.vocab_size;
  return c;
}

using outputs = std::map<std::pair<request_id, std::int32_t>, std::vector<token_id>>;

outputs run(llm_engine& engine, std::map<request_id, std::string>* text = nullptr,
            std::map<request_id, request_output>* last = nullptr) {
  outputs out;
  while (engine.has_unfinished())
    for (const auto& e : engine.step()) {
      for (const auto& t : e.tokens) out[{e.request, e.index}].push_back(t.token);
      if (text) (*text)[e.request] += e.text;
      if (last && e.finish) (*last)[e.request] = e;
    }
  return out;
}

sampling_params greedy(std::int32_t max_tokens) {
  sampling_params p;
  p.temperature = 0.0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

}  // namespace

TEST_CASE("each sequence's logits in a mixed, chunked batch equal its solo run", "[local_executor][model]") {
  fixture& f = shared_fixture();
  std::mt19937 rng(5);
  const std::vector<std::int64_t> lengths{5, 17, 33, 2};
  std::vector<std::vector<token_id>> seqs;
  for (auto n : lengths) seqs.push_back(random_tokens(rng, n));
  constexpr std::int32_t block_size = 4;
  // Solo: every position of one sequence in one step.
  std::vector<std::vector<float>> solo;
  const auto vocab = static_cast<std::size_t>(f.checkpoint.config.vocab_size);
  for (const auto& ids : seqs) {
    model::kv_cache cache(*f.backend, f.checkpoint.config, 16, block_size);
    std::vector<std::int32_t> blocks(16);
    std::iota(blocks.begin(), blocks.end(), 0);
    model::step_batch batch;
    batch.block_size = block_size;
    model::add_sequence(batch, ids, 0, blocks, model::logit_rows::all);
    solo.push_back(f.forward.forward_logits(batch, cache));
  }
  // Mixed: the sequences advance by random chunks side by side in one cache.
  model::kv_cache cache(*f.backend, f.checkpoint.config, 64, block_size);
  std::vector<std::int64_t> done(seqs.size(), 0);
  float worst = 0.0f;
  for (bool progress = true; progress;) {
    progress = false;
    model::step_batch batch;
    batch.block_size = block_size;
    std::vector<std::pair<std::size_t, std::int64_t>> rows;  // (sequence, position) per logit row
    for (std::size_t s = 0; s < seqs.size(); ++s) {
      const std::int64_t left = std::ssize(seqs[s]) - done[s];
      if (left == 0) continue;
      const std::int64_t chunk = std::min<std::int64_t>(left, std::uniform_int_distribution<int>(1, 7)(rng));
      std::vector<std::int32_t> blocks(16);
      std::iota(blocks.begin(), blocks.end(), static_cast<std::int32_t>(s * 16));
      const std::span<const token_id> tokens(seqs[s].data() + done[s], static_cast<std::size_t>(chunk));
      model::add_sequence(batch, tokens, static_cast<std::int32_t>(done[s]), blocks, model::logit_rows::all);
      for (std::int64_t i = 0; i < chunk; ++i) rows.emplace_back(s, done[s] + i);
      done[s] += chunk;
      progress = true;
    }
    if (!progress) break;
    const auto logits = f.forward.forward_logits(batch, cache);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const auto [s, position] = rows[r];
      const std::span<const float> mixed(logits.data() + r * vocab, vocab);
      const std::span<const float> alone(solo[s].data() + static_cast<std::size_t>(position) * vocab, vocab);
      worst = std::max(worst, max_abs_diff(mixed, alone));
      CHECK(argmax(mixed) == argmax(alone));
    }
  }
  INFO("max |mixed - solo| = " << worst);
  CHECK(worst <= 1e-5f);
}

TEST_CASE("greedy outputs survive batching, chunking, preemption and the prefix cache", "[local_executor][model]") {
  fixture& f = shared_fixture();
  std::mt19937 rng(11);
  const auto system = random_tokens(rng, 14);
  std::vector<std::vector<token_id>> prompts;
  for (int i = 0; i < 5; ++i) {
    auto p = system;
    const auto tail = random_tokens(rng, 3 + 4 * i);
    p.insert(p.end(), tail.begin(), tail.end());
    prompts.push_back(p);
  }
  outputs solo;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto config = config_for(f, 64, 512, false);
    local_executor executor(f.forward, config.scheduler.num_blocks, config.scheduler.block_size, f.eos);
    llm_engine engine(config, executor, nullptr);
    REQUIRE_FALSE(engine.add_request(i, prompts[i], greedy(16)));
    solo[{i, 0}] = run(engine).at({i, 0});
  }
  // 14 blocks of 4 for five sequences of up to 49 tokens: decodes must preempt.
  const auto config = config_for(f, 14, 12, true);
  local_executor executor(f.forward, config.scheduler.num_blocks, config.scheduler.block_size, f.eos);
  llm_engine engine(config, executor, nullptr);
  for (std::size_t i = 0; i < prompts.size(); ++i) REQUIRE_FALSE(engine.add_request(i, prompts[i], greedy(16)));
  const auto batched = run(engine);
  CHECK(batched == solo);
  CHECK(engine.stats().num_preemptions > 0);
  CHECK(engine.stats().num_prefix_hit_tokens > 0);
  CHECK(engine.get_scheduler().blocks().num_free_blocks() == config.scheduler.num_blocks);
}

// What the GPU test of CUDA graphs checks, on a CPU backend that replays recordings as graphs do:
// prefills, preemption and forks between decode steps, greedy and seeded sampled rows.
TEST_CASE("an engine serves the same tokens with decode steps replayed from recordings", "[local_executor][model]") {
  fixture& f = shared_fixture();
  std::mt19937 rng(23);
  std::vector<std::vector<token_id>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(random_tokens(rng, 2 + 7 * i));
  const auto serve = [&](kernels::backend& backend, bool prefix_caching) {
    model::glm4_model forward(f.checkpoint.config, f.checkpoint.weights, backend);
    forward.record_decode_steps(true);
    const auto config = config_for(f, 24, 16, prefix_caching);  // 24 blocks of 4: decodes preempt
    local_executor executor(forward, config.scheduler.num_blocks, config.scheduler.block_size, f.eos);
    llm_engine engine(config, executor, nullptr);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      sampling_params params = greedy(static_cast<std::int32_t>(5 + 3 * i));
      if (i % 2 == 1) {
        params.temperature = 0.8;
        params.top_p = 0.9;
        params.seed = 100 + i;
      }
      if (i == 3) params.n = 2;
      REQUIRE_FALSE(engine.add_request(i, prompts[i], params));
    }
    const outputs out = run(engine);
    CHECK(engine.stats().num_preemptions > 0);
    return out;
  };
  const bool prefix_caching = GENERATE(false, true);
  CAPTURE(prefix_caching);
  auto direct_backend = kernels::make_cpu_backend(1);
  auto replaying = test::make_replaying_backend();
  const outputs direct = serve(*direct_backend, prefix_caching);
  CHECK(serve(*replaying, prefix_caching) == direct);
  CHECK(direct.size() == prompts.size() + 1);
  CHECK(replaying->num_replays() > 0);
}

TEST_CASE("a prefix-cache hit gives the same logits as a miss", "[local_executor][model]") {
  fixture& f = shared_fixture();
  std::mt19937 rng(3);
  auto first = random_tokens(rng, 21), second = first;
  second.resize(16);
  const auto tail = random_tokens(rng, 6);
  second.insert(second.end(), tail.begin(), tail.end());
  auto last_logits = [&](bool cached) {
    const auto config = config_for(f, 32, 512, cached);
    local_executor executor(f.forward, config.scheduler.num_blocks, config.scheduler.block_size, f.eos);
    executor.set_sampling(sampling_site::host);  // which keeps the logits
    llm_engine engine(config, executor, nullptr);
    REQUIRE_FALSE(engine.add_request(1, first, greedy(1)));
    run(engine);
    REQUIRE_FALSE(engine.add_request(2, second, greedy(1)));
    run(engine);
    CHECK(engine.stats().num_prefix_hit_tokens == (cached ? 16 : 0));
    return executor.last_logits();
  };
  const auto hit = last_logits(true), miss = last_logits(false);
  REQUIRE_FALSE(hit.empty());
  REQUIRE(hit.size() == miss.size());
  CHECK(max_abs_diff(hit, miss) <= 1e-5f);
}

TEST_CASE("forked choices copy their shared block before writing it", "[local_executor][model]") {
  fixture& f = shared_fixture();
  std::mt19937 rng(8);
  const auto prompt = random_tokens(rng, 10);  // ends inside a block the choices share
  const auto config = config_for(f, 32, 512, true);
  sampling_params params;
  params.temperature = 1.0;
  params.seed = 77;
  params.max_tokens = 12;
  params.ignore_eos = true;
  params.n = 3;
  local_executor executor(f.forward, config.scheduler.num_blocks, config.scheduler.block_size, f.eos);
  llm_engine engine(config, executor, nullptr);
  REQUIRE_FALSE(engine.add_request(1, prompt, params));
  const auto forked = run(engine);
  for (std::int32_t i = 0; i < 3; ++i) {
    local_executor alone_executor(f.forward, config.scheduler.num_blocks, config.scheduler.block_size, f.eos);
    llm_engine alone(config, alone_executor, nullptr);
    sampling_params single = params;
    single.n = 1;
    single.seed = child_seed(77, i);
    REQUIRE_FALSE(alone.add_request(9, prompt, single));
    CHECK(run(alone).at({9, 0}) == forked.at({1, i}));
  }
}

TEST_CASE("stop strings cut the streamed text of a real model", "[local_executor][model]") {
  fixture& f = shared_fixture();
  const auto config = config_for(f, 64, 512, true);
  local_executor executor(f.forward, config.scheduler.num_blocks, config.scheduler.block_size, f.eos);
  llm_engine engine(config, executor, &f.tok);
  const auto prompt = f.tok.encode("The quick brown fox");
  std::map<request_id, std::string> text;
  std::map<request_id, request_output> last;
  REQUIRE_FALSE(engine.add_request(1, prompt, greedy(40)));
  run(engine, &text, &last);
  const std::string full = text.at(1);
  INFO("full text: " << full);
  REQUIRE(full.size() >= 12);
  const std::string stop = full.substr(full.size() / 2, 3);
  auto params = greedy(40);
  params.stop = {stop, "\x01never"};
  REQUIRE_FALSE(engine.add_request(2, prompt, params));
  run(engine, &text, &last);
  CHECK(text.at(2) == full.substr(0, full.find(stop)));
  CHECK(*last.at(2).finish == finish_reason::stop);
  CHECK(last.at(2).message == stop);
  CHECK(*last.at(1).finish == finish_reason::length);
}

TEST_CASE("a local_executor made with a budget reports it and steps only once its pool is allocated",
          "[local_executor][model]") {
  fixture& f = shared_fixture();
  const std::size_t per_block = model::kv_cache::bytes_per_block(f.checkpoint.config, 4, f.forward.kv_cache_dtype());
  local_executor executor(f.forward, kv_budget{per_block * 12 + 5}, 4, f.eos);
  const memory_report report = executor.memory();
  CHECK(report.device == f.backend->name());
  CHECK(report.kv_bytes_per_block == per_block);
  CHECK(report.max_blocks() == 12);
  CHECK_THROWS_AS(executor.cache(), std::logic_error);

  const engine_config config = config_for(f, 12, 64, true);
  llm_engine engine(config, executor, &f.tok);
  REQUIRE_FALSE(engine.add_request(1, {5, 6, 7}, greedy(2)));
  CHECK(run(engine).empty());  // the step fails: no pool yet
  executor.allocate_kv_pool(12);
  CHECK(executor.cache().num_blocks() == 12);
  REQUIRE_FALSE(engine.add_request(2, {5, 6, 7}, greedy(2)));
  CHECK(run(engine).at({2, 0}).size() == 2);
}

TEST_CASE("a local_executor sizes and allocates its pool in the model's KV cache type", "[local_executor][model]") {
  fixture& f = shared_fixture();
  model::glm4_model forward(f.checkpoint.config, f.checkpoint.weights, *f.backend);
  forward.set_kv_cache_dtype(kernels::dtype::bf16);
  const std::size_t per_block = model::kv_cache::bytes_per_block(f.checkpoint.config, 4, kernels::dtype::bf16);
  CHECK(per_block * 2 == model::kv_cache::bytes_per_block(f.checkpoint.config, 4, kernels::dtype::f32));
  local_executor executor(forward, kv_budget{per_block * 12}, 4, f.eos);
  CHECK(executor.memory().kv_bytes_per_block == per_block);
  CHECK(executor.memory().max_blocks() == 12);
  executor.allocate_kv_pool(12);
  CHECK(executor.cache().type() == kernels::dtype::bf16);

  llm_engine engine(config_for(f, 12, 64, true), executor, &f.tok);
  REQUIRE_FALSE(engine.add_request(1, {5, 6, 7}, greedy(3)));
  CHECK(run(engine).at({1, 0}).size() == 3);
}

}  // namespace glm4::engine
