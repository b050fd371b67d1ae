// Planning ahead (llm_engine::plan_step with a step in flight): the step after the one out is
// planned before its samples exist, with placeholders the device fills from its own samples.
// A device runs the steps in plan order, and the engine takes them back in that order, at any
// time relative to each other; every choice must still get the tokens of an unbatched run.
#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <random>

#include "engine/llm_engine.hpp"
#include "tests/engine/fake_executor.hpp"

namespace glm4::engine {
namespace {

using testing::fake_executor;
using testing::greedy;
using testing::prompt_of;
using testing::reference_run;

/// The devices' side of the scheduler actor, by hand: up to two planned steps out, a device that
/// runs the oldest it has not run (filling fed tokens from its previous results), and the engine
/// taking back the oldest the device has run.
struct pipeline {
  struct out_step {
    planned_step step;
    // The rows' views are good until the engine is next called: copied, as a plan message is.
    std::vector<sampling_params> params;
    std::vector<std::vector<token_id>> prompts, outputs;
    std::vector<sequence_sampling_state> states;
    std::optional<std::vector<sample_result>> results;

    std::vector<row_sampling> rows() const {
      std::vector<row_sampling> rows;
      for (std::size_t r = 0; r < params.size(); ++r)
        rows.push_back({&params[r], {prompts[r], outputs[r], states[r].seed, states[r].num_output_tokens}});
      return rows;
    }
  };

  pipeline(llm_engine& engine, fake_executor& device) : engine(engine), device(device) {}

  /// Plans one more step if fewer than two are out; false when the engine has none to give.
  bool plan() {
    if (steps.size() >= 2) return false;
    auto step = engine.plan_step();
    if (!step) return false;
    if (!steps.empty()) ++num_planned_ahead;
    num_fed += std::ssize(step->fed);
    out_step out{std::move(*step), {}, {}, {}, {}, std::nullopt};
    for (const row_sampling& row : out.step.rows) {
      out.params.push_back(*row.params);
      out.prompts.emplace_back(row.state.prompt_token_ids.begin(), row.state.prompt_token_ids.end());
      out.outputs.emplace_back(row.state.output_token_ids.begin(), row.state.output_token_ids.end());
      out.states.push_back(row.state);
    }
    steps.push_back(std::move(out));
    return true;
  }

  bool device_runs_one() {
    for (out_step& out : steps) {
      if (out.results) continue;
      model::step_batch batch = out.step.batch;
      device.fill_fed_tokens(batch, out.step.fed, previous);
      previous = device.execute(batch, out.step.copies, out.rows());
      out.results = previous;
      return true;
    }
    return false;
  }

  std::vector<request_output> engine_takes_one() {
    if (steps.empty() || !steps.front().results) return {};
    out_step out = std::move(steps.front());
    steps.pop_front();
    return engine.finish_step(std::move(out.step), *out.results);
  }

  /// What the scheduler actor does: keep two out, run, take back.
  std::vector<request_output> round() {
    while (plan()) {
    }
    device_runs_one();
    return engine_takes_one();
  }

  llm_engine& engine;
  fake_executor& device;
  std::deque<out_step> steps;
  std::vector<sample_result> previous;
  std::int64_t num_planned_ahead = 0, num_fed = 0;
};

struct outcome {
  std::map<std::pair<request_id, std::int32_t>, std::vector<token_id>> tokens;
  std::map<std::pair<request_id, std::int32_t>, finish_reason> finish;
  std::map<std::pair<request_id, std::int32_t>, int> num_finishes;
  void add(const std::vector<request_output>& events) {
    for (const auto& e : events) {
      const auto key = std::pair{e.request, e.index};
      REQUIRE(num_finishes[key] == 0);  // nothing after the final event
      for (const auto& t : e.tokens) tokens[key].push_back(t.token);
      if (e.finish) {
        finish[key] = *e.finish;
        ++num_finishes[key];
      }
    }
  }
};

constexpr std::int64_t vocab = testing::small_vocab;
const std::vector<token_id> eos = testing::small_eos;

}  // namespace

TEST_CASE("a planned-ahead step feeds each sequence its sample from the step before", "[llm_engine][plan_ahead]") {
  const auto config = testing::small_engine_config(64);
  fake_executor device(64, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, nullptr);
  REQUIRE_FALSE(engine.add_request(1, prompt_of(6), greedy(5)));
  REQUIRE_FALSE(engine.add_request(2, prompt_of(9, 30), greedy(3)));
  auto first = engine.plan_step();
  REQUIRE(first);
  CHECK(first->fed.empty());
  auto second = engine.plan_step();  // while the first is out
  REQUIRE(second);
  REQUIRE(second->fed.size() == 2);
  // Each fed token is its sequence's only token in the step, a placeholder until the device fills it.
  for (const fed_token& fed : second->fed) CHECK(second->batch.token_ids.at(static_cast<std::size_t>(fed.token_index)) == pending_token_id);
  CHECK(second->fed[0].previous_row == 0);
  CHECK(second->fed[1].previous_row == 1);
  CHECK_THROWS_AS(engine.plan_step(), std::logic_error);  // two out at most
  CHECK_THROWS_AS(engine.finish_step(std::move(*second), {}), std::logic_error);  // the oldest comes back first
}

TEST_CASE("planning ahead gives every choice the tokens of an unbatched run, whatever the timing",
          "[llm_engine][plan_ahead][property]") {
  std::int64_t total_ahead = 0, total_fed = 0, total_preemptions = 0, total_stops = 0;
  for (std::uint32_t trial = 0; trial < 24; ++trial) {
    std::mt19937 rng(trial * 104729u + 7u);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const engine_config config = testing::random_engine_config(pick, 10, 48, 6, vocab, eos);
    CAPTURE(trial, config.scheduler.num_blocks, config.scheduler.block_size, config.scheduler.max_num_batched_tokens);
    fake_executor device(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
    llm_engine engine(config, nullptr);
    pipeline line(engine, device);
    outcome got;

    struct submitted {
      std::vector<token_id> prompt;
      sampling_params params;
      bool aborted = false;
    };
    std::map<request_id, submitted> requests;
    request_id next_id = 0;
    for (int op = 0; op < 300; ++op) {
      const int kind = pick(0, 11);
      if (kind < 3) {
        submitted r;
        for (int i = pick(1, 20); i > 0; --i) r.prompt.push_back(pick(4, vocab - 1));
        r.params.temperature = pick(0, 1) ? 0.0 : 0.9;
        r.params.seed = static_cast<std::uint64_t>(pick(0, 1000));
        if (pick(0, 4)) r.params.max_tokens = pick(1, 24);
        r.params.n = pick(0, 4) ? 1 : 2;
        r.params.ignore_eos = pick(0, 2) == 0;
        if (pick(0, 3) == 0) r.params.stop_token_ids = {pick(4, vocab - 1)};
        if (pick(0, 5) == 0) r.params.repetition_penalty = 1.3;  // reads the history: not planned past
        const request_id id = next_id++;
        if (!engine.add_request(id, r.prompt, r.params)) requests.emplace(id, r);
      } else if (kind == 3 && next_id > 0) {
        const auto id = static_cast<request_id>(pick(0, static_cast<int>(next_id - 1)));
        const auto events = engine.abort(id);
        if (!events.empty()) requests.at(id).aborted = true;
        got.add(events);
      } else if (kind < 6) {
        line.plan();
      } else if (kind < 9) {
        line.device_runs_one();
      } else {
        got.add(line.engine_takes_one());
      }
    }
    for (int i = 0; i < 100000 && (engine.has_unfinished() || !line.steps.empty()); ++i) got.add(line.round());
    REQUIRE_FALSE(engine.has_unfinished());
    REQUIRE(line.steps.empty());
    REQUIRE(engine.get_scheduler().blocks().num_free_blocks() == config.scheduler.num_blocks);
    REQUIRE_FALSE(engine.get_scheduler().blocks().check_invariants());
    for (const auto& [id, r] : requests)
      for (std::int32_t i = 0; i < r.params.n; ++i) {
        const auto key = std::pair{id, i};
        CAPTURE(id, i);
        REQUIRE(got.num_finishes[key] == 1);
        if (r.aborted) continue;
        sampling_params single = r.params;
        single.n = 1;
        REQUIRE(got.tokens[key] ==
                reference_run(r.prompt, single, child_seed(*r.params.seed, i), vocab, eos, config.scheduler.max_model_len));
        REQUIRE(got.finish.at(key) != finish_reason::error);
        if (got.finish.at(key) == finish_reason::stop) ++total_stops;
      }
    total_ahead += line.num_planned_ahead;
    total_fed += line.num_fed;
    total_preemptions += engine.stats().num_preemptions;
  }
  // The traffic did plan ahead, feed tokens, stop sequences inside the pipeline and preempt.
  CHECK(total_ahead > 100);
  CHECK(total_fed > 100);
  CHECK(total_stops > 10);
  CHECK(total_preemptions > 0);
}

}  // namespace glm4::engine
