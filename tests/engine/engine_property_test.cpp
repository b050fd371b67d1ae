// Thousands of random submits, aborts and steps over small pools, against the invariants: no
// leaked block, the budget respected, every request finished or rejected with a reason, and
// every choice's tokens equal to an unbatched, unpreempted run.
#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "engine/llm_engine.hpp"
#include "tests/engine/fake_executor.hpp"

namespace glm4::engine {
namespace {

constexpr std::int64_t vocab = 32;
const std::vector<token_id> eos{3};

struct submitted {
  std::vector<token_id> prompt;
  sampling_params params;
  bool aborted = false;
};

}  // namespace

TEST_CASE("llm_engine keeps its invariants under random traffic", "[llm_engine][property]") {
  std::int64_t total_preemptions = 0, total_hits = 0, total_ops = 0, total_copies = 0;
  for (std::uint32_t trial = 0; trial < 24; ++trial) {
    std::mt19937 rng(trial * 7919u + 1u);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const engine_config config = testing::random_engine_config(pick, 8, 40, 4, vocab, eos);
    CAPTURE(trial, config.scheduler.num_blocks, config.scheduler.block_size, config.scheduler.max_num_batched_tokens);
    testing::fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
    llm_engine engine(config, executor, nullptr);

    std::vector<std::vector<token_id>> prefixes(3);
    for (auto& prefix : prefixes) {
      prefix.resize(static_cast<std::size_t>(pick(0, 24)));
      for (auto& t : prefix) t = pick(4, vocab - 1);
    }
    std::map<request_id, submitted> requests;
    std::map<std::pair<request_id, std::int32_t>, std::vector<token_id>> tokens;
    std::map<std::pair<request_id, std::int32_t>, int> num_finishes;
    std::map<std::pair<request_id, std::int32_t>, finish_reason> reasons;
    auto collect = [&](const std::vector<request_output>& events) {
      for (const auto& e : events) {
        const auto key = std::pair{e.request, e.index};
        REQUIRE(num_finishes[key] == 0);  // nothing after the final event
        for (const auto& t : e.tokens) tokens[key].push_back(t.token);
        if (e.finish) {
          ++num_finishes[key];
          reasons[key] = *e.finish;
        }
      }
    };
    auto check_invariants = [&] {
      const auto& s = engine.get_scheduler();
      const std::vector<const sequence*> live(s.running().begin(), s.running().end());
      const auto problem = s.blocks().check_invariants(live);
      INFO(problem.value_or(""));
      REQUIRE_FALSE(problem);
      for (const sequence* seq : s.waiting()) REQUIRE(seq->block_table.empty());
      REQUIRE(engine.last_num_batched_tokens() <= config.scheduler.max_num_batched_tokens);
    };

    request_id next_id = 0;
    for (int op = 0; op < 300; ++op, ++total_ops) {
      const int kind = pick(0, 9);
      if (kind < 4) {
        submitted r;
        r.prompt = prefixes[static_cast<std::size_t>(pick(0, 2))];
        for (int i = pick(1, 16); i > 0; --i) r.prompt.push_back(pick(4, vocab - 1));
        r.params.temperature = pick(0, 1) ? 0.0 : 0.9;
        r.params.seed = static_cast<std::uint64_t>(pick(0, 1000));
        if (pick(0, 4)) r.params.max_tokens = pick(1, 24);
        r.params.n = pick(0, 3) ? 1 : pick(2, 3);
        r.params.ignore_eos = pick(0, 1);
        if (pick(0, 3) == 0) r.params.stop_token_ids = {pick(4, vocab - 1)};
        if (r.params.max_tokens && pick(0, 3) == 0) r.params.min_tokens = pick(0, *r.params.max_tokens);
        const request_id id = next_id++;
        const auto rejected = engine.add_request(id, r.prompt, r.params);
        if (rejected) {
          REQUIRE_FALSE(rejected->empty());
        } else {
          requests.emplace(id, r);
        }
      } else if (kind == 4 && next_id > 0) {
        const request_id id = static_cast<request_id>(pick(0, static_cast<int>(next_id - 1)));
        const auto events = engine.abort(id);
        if (!events.empty()) requests.at(id).aborted = true;
        collect(events);
      } else {
        collect(engine.step());
      }
      check_invariants();
    }
    for (int i = 0; i < 100000 && engine.has_unfinished(); ++i) {
      collect(engine.step());
      check_invariants();
    }
    REQUIRE_FALSE(engine.has_unfinished());
    REQUIRE(engine.get_scheduler().blocks().num_free_blocks() == config.scheduler.num_blocks);
    for (const auto& [id, r] : requests) {
      for (std::int32_t i = 0; i < r.params.n; ++i) {
        const auto key = std::pair{id, i};
        REQUIRE(num_finishes[key] == 1);
        if (r.aborted) continue;
        CAPTURE(id, i);
        sampling_params single = r.params;
        single.n = 1;
        REQUIRE(tokens[key] == testing::reference_run(r.prompt, single, child_seed(*r.params.seed, i), vocab, eos,
                                                       config.scheduler.max_model_len));
        REQUIRE(reasons[key] != finish_reason::error);
      }
    }
    total_preemptions += engine.stats().num_preemptions;
    total_hits += engine.stats().num_prefix_hit_tokens;
    total_copies += executor.num_copies;
  }
  CHECK(total_ops == 24 * 300);
  // The traffic did exercise what the invariants are about.
  CHECK(total_preemptions > 0);
  CHECK(total_hits > 0);
  CHECK(total_copies > 0);
}

}  // namespace glm4::engine
