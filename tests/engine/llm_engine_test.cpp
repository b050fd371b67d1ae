// The engine facade over the fake executor: events, finish reasons, n > 1, abort, errors, stops.
#include <catch2/catch.hpp>

#include <map>
#include <numeric>

#include "engine/llm_engine.hpp"
#include "tests/engine/fake_executor.hpp"

namespace glm4::engine {
namespace {

using testing::fake_executor;
using testing::reference_run;

using testing::greedy;
using testing::prompt_of;

constexpr std::int64_t vocab = testing::small_vocab;
const std::vector<token_id> eos = testing::small_eos;

engine_config make_config(std::int32_t num_blocks = 64) { return testing::small_engine_config(num_blocks); }

struct collected {
  std::map<std::pair<request_id, std::int32_t>, std::vector<token_id>> tokens;
  std::map<std::pair<request_id, std::int32_t>, std::string> text;
  std::map<std::pair<request_id, std::int32_t>, request_output> last;
  void add(const std::vector<request_output>& events) {
    for (const auto& e : events) {
      const auto key = std::pair{e.request, e.index};
      for (const auto& t : e.tokens) tokens[key].push_back(t.token);
      text[key] += e.text;
      last[key] = e;
    }
  }
};

collected run_all(llm_engine& engine) {
  collected c;
  for (int i = 0; i < 10000 && engine.has_unfinished(); ++i) c.add(engine.step());
  return c;
}

}  // namespace

TEST_CASE("llm_engine streams a greedy request to its length limit", "[llm_engine]") {
  const auto config = make_config();
  fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, executor, nullptr);
  const auto params = greedy(12);
  REQUIRE_FALSE(engine.add_request(1, prompt_of(30), params));
  const auto result = run_all(engine);
  const auto& last = result.last.at({1, 0});
  REQUIRE(last.finish);
  CHECK(*last.finish == finish_reason::length);
  CHECK(last.num_prompt_tokens == 30);
  CHECK(last.num_output_tokens == 12);
  CHECK(result.tokens.at({1, 0}) == reference_run(prompt_of(30), params, 0, vocab, eos, 128));
  CHECK(engine.get_scheduler().blocks().num_free_blocks() == config.scheduler.num_blocks);
  CHECK(executor.max_step_tokens <= 16);
}

TEST_CASE("llm_engine stops on eos and stop ids, not before min_tokens", "[llm_engine]") {
  const auto config = make_config();
  fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, executor, nullptr);
  auto free_run = greedy(40);
  const auto tokens = reference_run(prompt_of(5), free_run, 0, vocab, eos, 128);
  sampling_params stop_params = greedy(40);
  stop_params.stop_token_ids = {tokens[4]};
  sampling_params min_params = stop_params;
  min_params.min_tokens = 5 + 1;
  sampling_params eos_params = greedy(40);
  eos_params.ignore_eos = false;
  eos_params.logit_bias = {{3, 100.0f}};  // eos becomes the argmax
  eos_params.min_tokens = 2;
  REQUIRE_FALSE(engine.add_request(1, prompt_of(5), stop_params));
  REQUIRE_FALSE(engine.add_request(2, prompt_of(5), min_params));
  REQUIRE_FALSE(engine.add_request(3, prompt_of(5), eos_params));
  const auto result = run_all(engine);
  const auto& first = result.tokens.at({1, 0});
  CHECK(*result.last.at({1, 0}).finish == finish_reason::stop);
  CHECK(first.back() == tokens[4]);
  CHECK(std::ssize(first) <= 5);
  CHECK(std::ssize(result.tokens.at({2, 0})) >= 6);
  CHECK(result.tokens.at({2, 0}) == reference_run(prompt_of(5), min_params, 0, vocab, eos, 128));
  CHECK(*result.last.at({3, 0}).finish == finish_reason::stop);
  CHECK(result.tokens.at({3, 0}).size() == 3);  // eos masked for two tokens, then sampled
  CHECK(result.tokens.at({3, 0}).back() == 3);
}

TEST_CASE("llm_engine forks n choices that share the prompt and sample on their own", "[llm_engine]") {
  const auto config = make_config();
  fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, executor, nullptr);
  sampling_params params;
  params.temperature = 1.0;
  params.seed = 42;
  params.n = 3;
  params.max_tokens = 9;
  params.ignore_eos = true;
  params.logprobs = true;
  params.top_logprobs = 2;
  REQUIRE_FALSE(engine.add_request(7, prompt_of(10), params));  // 10 tokens: a shared partial block
  const auto result = run_all(engine);
  for (std::int32_t i = 0; i < 3; ++i) {
    sampling_params single = params;
    single.n = 1;
    CHECK(result.tokens.at({7, i}) == reference_run(prompt_of(10), single, child_seed(42, i), vocab, eos, 128));
    CHECK(*result.last.at({7, i}).finish == finish_reason::length);
    CHECK(result.last.at({7, i}).tokens.at(0).top_logprobs.size() == 2);
  }
  CHECK(result.tokens.at({7, 0}) != result.tokens.at({7, 1}));
  CHECK(executor.num_copies == 2);  // two of the three choices copied the shared last block
  CHECK(engine.get_scheduler().blocks().num_free_blocks() == config.scheduler.num_blocks);
}

TEST_CASE("llm_engine abort ends a request in any state and frees its blocks", "[llm_engine]") {
  auto config = make_config();
  config.scheduler.max_num_seqs = 1;
  fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, executor, nullptr);
  auto params = greedy(50);
  params.n = 2;
  REQUIRE_FALSE(engine.add_request(1, prompt_of(40), params));
  REQUIRE_FALSE(engine.add_request(2, prompt_of(8), greedy(50)));
  engine.step();  // 1 is mid-prefill, 2 waits
  CHECK(engine.get_scheduler().blocks().num_used_blocks() == 10);
  const auto aborted = engine.abort(1);
  REQUIRE(aborted.size() == 2);  // both choices, the unforked one included
  for (const auto& e : aborted) CHECK(*e.finish == finish_reason::abort);
  CHECK(engine.get_scheduler().blocks().num_used_blocks() == 0);
  const auto waiting = engine.abort(2);
  REQUIRE(waiting.size() == 1);
  CHECK(*waiting[0].finish == finish_reason::abort);
  CHECK_FALSE(engine.has_unfinished());
  CHECK(engine.abort(2).empty());
}

TEST_CASE("llm_engine fails the step's requests when the executor throws", "[llm_engine]") {
  const auto config = make_config();
  fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, executor, nullptr);
  REQUIRE_FALSE(engine.add_request(1, prompt_of(6), greedy(5)));
  executor.fail_next = true;
  const auto events = engine.step();
  REQUIRE(events.size() == 1);
  CHECK(*events[0].finish == finish_reason::error);
  CHECK(events[0].message == "device lost");
  CHECK(engine.get_scheduler().blocks().num_used_blocks() == 0);
  REQUIRE_FALSE(engine.add_request(2, prompt_of(6), greedy(5)));
  const auto result = run_all(engine);
  CHECK(*result.last.at({2, 0}).finish == finish_reason::length);
}

TEST_CASE("llm_engine rejects requests at submit with a reason", "[llm_engine]") {
  const auto config = make_config(8);  // 32 tokens of KV
  fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, executor, nullptr);
  auto too_long = engine.add_request(1, prompt_of(100), greedy(40));
  REQUIRE(too_long);
  CHECK_THAT(*too_long, Catch::Contains("max_model_len"));
  auto no_room = engine.add_request(2, prompt_of(20), greedy(20));
  REQUIRE(no_room);
  CHECK_THAT(*no_room, Catch::Contains("KV blocks"));
  auto bad = greedy(5);
  bad.top_p = 2.0;
  REQUIRE(engine.add_request(3, prompt_of(4), bad));
  REQUIRE_FALSE(engine.add_request(4, prompt_of(4), greedy(5)));
  auto duplicate = engine.add_request(4, prompt_of(4), greedy(5));
  REQUIRE(duplicate);
  CHECK_THAT(*duplicate, Catch::Contains("already in use"));
  CHECK(engine.num_unfinished() == 1);
}

TEST_CASE("llm_engine tells queued, running and finished requests apart", "[llm_engine]") {
  auto config = make_config();
  config.scheduler.max_num_seqs = 1;  // the second request waits for the first
  fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, executor, nullptr);
  REQUIRE_FALSE(engine.add_request(1, prompt_of(4), greedy(3)));
  REQUIRE_FALSE(engine.add_request(2, prompt_of(4), greedy(3)));
  CHECK(engine.is_queued(1));
  CHECK(engine.is_queued(2));
  engine.step();
  CHECK_FALSE(engine.is_queued(1));
  CHECK(engine.has_request(1));
  CHECK(engine.is_queued(2));
  run_all(engine);
  CHECK_FALSE(engine.has_request(1));
  CHECK_FALSE(engine.has_request(2));
  CHECK_FALSE(engine.is_queued(2));
}

}  // namespace glm4::engine

namespace glm4::engine {

TEST_CASE("plan_step and finish_step run the steps step() runs, with requests added in between", "[llm_engine]") {
  const auto config = make_config();
  fake_executor executor_a(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  fake_executor executor_b(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  llm_engine stepped(config, executor_a, nullptr);
  llm_engine planned(config, nullptr);
  REQUIRE_THROWS_AS(planned.step(), std::logic_error);
  auto sampled = greedy(9);
  sampled.temperature = 0.9;
  sampled.seed = 5;
  sampled.n = 2;
  for (llm_engine* engine : {&stepped, &planned}) {
    REQUIRE_FALSE(engine->add_request(1, prompt_of(7), greedy(6)));
    REQUIRE_FALSE(engine->add_request(2, prompt_of(13, 30), sampled));
  }
  collected want, got;
  for (int i = 0; i < 200 && (stepped.has_unfinished() || planned.has_unfinished()); ++i) {
    want.add(stepped.step());
    if (i == 2) REQUIRE_FALSE(stepped.add_request(3, prompt_of(5, 40), greedy(4)));
    auto step = planned.plan_step();
    if (!step) continue;
    REQUIRE(planned.has_step_in_flight());
    // While the step is out new requests are taken.
    if (i == 2) REQUIRE_FALSE(planned.add_request(3, prompt_of(5, 40), greedy(4)));
    const auto results = executor_b.execute(step->batch, step->copies, step->rows);
    got.add(planned.finish_step(std::move(*step), results));
    CHECK_FALSE(planned.has_step_in_flight());
  }
  CHECK_FALSE(planned.has_unfinished());
  CHECK(got.tokens == want.tokens);
  for (const auto& [key, event] : want.last) CHECK(got.last.at(key).finish == event.finish);
  CHECK(planned.get_scheduler().blocks().num_free_blocks() == config.scheduler.num_blocks);
}

TEST_CASE("a planned step that comes back failed, or with the wrong sample count, ends its requests in error",
          "[llm_engine]") {
  const auto config = make_config();
  fake_executor executor(config.scheduler.num_blocks, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, nullptr);
  REQUIRE_FALSE(engine.add_request(1, prompt_of(6), greedy(5)));
  REQUIRE_FALSE(engine.add_request(2, prompt_of(6, 20), greedy(5)));
  auto first = engine.plan_step();
  REQUIRE(first);
  const auto results = executor.execute(first->batch, first->copies, first->rows);
  REQUIRE(results.size() == 2);
  collected got;
  got.add(engine.finish_step(std::move(*first), std::span(results).first(1)));
  CHECK(got.last.at({1, 0}).finish == finish_reason::error);
  CHECK_THAT(got.last.at({1, 0}).message, Catch::Contains("1 samples for 2 rows"));
  CHECK_FALSE(engine.has_unfinished());

  REQUIRE_FALSE(engine.add_request(3, prompt_of(6), greedy(5)));
  auto second = engine.plan_step();
  REQUIRE(second);
  got.add(engine.fail_step(std::move(*second), "rank 1 is down"));
  CHECK(got.last.at({3, 0}).finish == finish_reason::error);
  CHECK(got.last.at({3, 0}).message == "rank 1 is down");
  CHECK(engine.get_scheduler().blocks().num_free_blocks() == config.scheduler.num_blocks);
  CHECK_FALSE(engine.has_step_in_flight());
}

TEST_CASE("llm_engine takes the sized KV pool before its first request, and not after", "[llm_engine]") {
  const auto config = make_config(64);
  fake_executor executor(64, config.scheduler.block_size, vocab, eos);
  llm_engine engine(config, executor, nullptr);
  engine.resize_kv_pool(kv_pool_size{10, 40, 0, ""});
  CHECK(engine.get_scheduler().blocks().num_blocks() == 10);
  CHECK(engine.get_scheduler().config().max_model_len == 40);
  // The new max_model_len admits: 41 tokens can never run, 40 can.
  CHECK(engine.add_request(1, prompt_of(30), greedy(11)));
  REQUIRE_FALSE(engine.add_request(2, prompt_of(30), greedy(10)));
  CHECK_THROWS_AS(engine.resize_kv_pool(kv_pool_size{64, 128, 0, ""}), std::logic_error);
  const auto result = run_all(engine);
  CHECK(result.tokens.at({2, 0}) == reference_run(prompt_of(30), greedy(10), 0, vocab, eos, 40));
  CHECK(engine.get_scheduler().blocks().num_free_blocks() == 10);
}

}  // namespace glm4::engine
