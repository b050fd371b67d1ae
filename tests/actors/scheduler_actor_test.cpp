// The scheduler actor and a device actor (over the fake executor) under CAF's deterministic test
// coordinator: every message runs on the test thread when the test says so, so ordering is exact
// and nothing sleeps.
#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <map>
#include <numeric>

#include "actors/device_actor.hpp"
#include "actors/local_runtime.hpp"
#include "actors/scheduler_actor.hpp"
#include "tests/engine/fake_executor.hpp"

namespace glm4::actors {
namespace {

using engine::testing::fake_executor;
using engine::testing::greedy;
using engine::testing::prompt_of;
using engine::testing::reference_run;
using engine::testing::small_engine_config;

constexpr std::int64_t vocab = engine::testing::small_vocab;
const std::vector<engine::token_id> eos = engine::testing::small_eos;

struct recording_sink : request_sink {
  std::vector<std::string> log;  // "rejected", "scheduled", "events"
  std::optional<rejection> rejected;
  std::map<std::int32_t, std::vector<engine::token_id>> tokens;
  std::map<std::int32_t, engine::finish_reason> finish;
  std::string message;

  void on_rejected(rejection reason) override {
    log.push_back("rejected");
    rejected = std::move(reason);
  }
  void on_accepted() override { log.push_back("accepted"); }
  void on_scheduled(std::chrono::steady_clock::time_point) override { log.push_back("scheduled"); }
  void on_events(std::vector<engine::request_output> events) override {
    log.push_back("events");
    for (const auto& e : events) {
      for (const auto& t : e.tokens) tokens[e.index].push_back(t.token);
      if (e.finish) {
        finish[e.index] = *e.finish;
        message = e.message;
      }
    }
  }
};

struct test_config : actor_config {
  test_config() { set("scheduler.policy", caf::atom("testing")); }
};

struct fixture {
  explicit fixture(std::int32_t num_blocks = 64, std::size_t max_queued = 16, std::int32_t max_num_seqs = 8,
                   bool plan_ahead = false)
      : executor(std::make_shared<fake_executor>(num_blocks, 4, vocab, eos)),
        engine(small_engine_config(num_blocks, max_num_seqs), nullptr), system(config),
        coordinator(dynamic_cast<caf::scheduler::test_coordinator&>(system.scheduler())) {
    // Not detached, so the device's steps run on the coordinator too.
    device = system.spawn(device_actor, std::shared_ptr<engine::step_executor>(executor), device_role{});
    scheduler = system.spawn(scheduler_actor,
                             scheduler_actor_config{&engine, &board, max_queued, {device}, {device}, "device 0", plan_ahead});
    coordinator.run();
  }
  ~fixture() {
    caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(device, caf::exit_reason::user_shutdown);
    coordinator.run();
  }

  std::shared_ptr<recording_sink> submit(engine::request_id id, std::vector<engine::token_id> prompt,
                                         const engine::sampling_params& params) {
    auto sink = std::make_shared<recording_sink>();
    caf::anon_send(scheduler, submit_atom::value, submission{id, std::move(prompt), params, sink});
    return sink;
  }

  std::shared_ptr<fake_executor> executor;
  engine::llm_engine engine;
  status_board board;
  test_config config;
  caf::actor_system system;
  caf::scheduler::test_coordinator& coordinator;
  caf::actor device;
  caf::actor scheduler;
};

}  // namespace

TEST_CASE("scheduler_actor runs submitted requests to the end, each into its own sink", "[scheduler_actor]") {
  fixture f;
  auto a = f.submit(1, prompt_of(9), greedy(7));
  auto b = f.submit(2, prompt_of(5, 20), greedy(4));
  f.coordinator.run();
  CHECK(a->tokens.at(0) == reference_run(prompt_of(9), greedy(7), 0, vocab, eos, 128));
  CHECK(b->tokens.at(0) == reference_run(prompt_of(5, 20), greedy(4), 0, vocab, eos, 128));
  CHECK(a->finish.at(0) == engine::finish_reason::length);
  REQUIRE(a->log.size() >= 2);
  CHECK(a->log[0] == "accepted");
  CHECK(a->log[1] == "scheduled");  // before any token
  CHECK(std::count(a->log.begin(), a->log.end(), "scheduled") == 1);
  const engine_status status = f.board.read();
  CHECK(status.is_ready);
  CHECK(status.num_running == 0);
  CHECK(status.num_waiting == 0);
  CHECK(status.kv_cache_usage == 0.0);
  CHECK(f.engine.get_scheduler().blocks().num_free_blocks() == 64);
}

TEST_CASE("scheduler_actor rejects with the reason and keeps serving", "[scheduler_actor]") {
  fixture f(/*num_blocks=*/64, /*max_queued=*/2);
  auto params = greedy(4);
  params.temperature = -1.0;
  auto bad = f.submit(1, prompt_of(4), params);
  auto too_long = f.submit(2, prompt_of(200), greedy(4));
  auto good = f.submit(3, prompt_of(4), greedy(4));
  auto duplicate = f.submit(3, prompt_of(4), greedy(4));
  f.coordinator.run();
  REQUIRE(bad->rejected);
  CHECK(bad->rejected->why == rejection::kind::invalid);
  CHECK_THAT(bad->rejected->message, Catch::Contains("temperature"));
  REQUIRE(too_long->rejected);
  CHECK(too_long->rejected->why == rejection::kind::invalid);
  REQUIRE(duplicate->rejected);
  CHECK_THAT(duplicate->rejected->message, Catch::Contains("in use"));
  CHECK_FALSE(good->rejected);
  CHECK(good->finish.at(0) == engine::finish_reason::length);
}

TEST_CASE("scheduler_actor answers overloaded once max_queued_requests wait", "[scheduler_actor]") {
  fixture f(/*num_blocks=*/64, /*max_queued=*/2, /*max_num_seqs=*/1);
  // All three arrive before the first step, so the third finds two queued.
  auto first = f.submit(1, prompt_of(4), greedy(3));
  auto second = f.submit(2, prompt_of(4), greedy(3));
  auto third = f.submit(3, prompt_of(4), greedy(3));
  f.coordinator.run();
  REQUIRE(third->rejected);
  CHECK(third->rejected->why == rejection::kind::overloaded);
  CHECK(first->finish.at(0) == engine::finish_reason::length);
  CHECK(second->finish.at(0) == engine::finish_reason::length);
  // With the queue drained the same request is accepted.
  auto again = f.submit(3, prompt_of(4), greedy(3));
  f.coordinator.run();
  CHECK_FALSE(again->rejected);
  CHECK(again->finish.at(0) == engine::finish_reason::length);
}

TEST_CASE("scheduler_actor aborts queued and running requests and frees their blocks", "[scheduler_actor]") {
  fixture f(/*num_blocks=*/64, /*max_queued=*/16, /*max_num_seqs=*/1);
  auto running = f.submit(1, prompt_of(8), greedy(50));
  auto queued = f.submit(2, prompt_of(8), greedy(50));
  // Until the first step's events: request 1 runs, 2 waits; step 2 is already on the device.
  while (running->log.size() < 3) {
    REQUIRE(f.coordinator.has_job());
    f.coordinator.run_once();
  }
  REQUIRE(running->log == std::vector<std::string>{"accepted", "scheduled", "events"});
  CHECK(f.board.read().num_waiting == 1);
  CHECK(f.board.read().num_running == 1);
  caf::anon_send(f.scheduler, abort_atom::value, engine::request_id{2});
  caf::anon_send(f.scheduler, abort_atom::value, engine::request_id{1});
  f.coordinator.run();
  CHECK(running->tokens.at(0).size() == 2);  // the aborts waited for step 2, then ended both
  CHECK(running->finish.at(0) == engine::finish_reason::abort);
  CHECK(queued->finish.at(0) == engine::finish_reason::abort);
  CHECK(queued->tokens.empty());
  CHECK(f.engine.get_scheduler().blocks().num_free_blocks() == 64);
  CHECK(f.board.read().num_waiting == 0);
  CHECK(f.board.read().num_running == 0);
  CHECK(f.board.read().kv_cache_usage == 0.0);
}

TEST_CASE("scheduler_actor ends a failed step's requests in error and serves the next ones", "[scheduler_actor]") {
  // Planning ahead, the decode planned after the failed prefill cannot be fed and fails too.
  const bool plan_ahead = GENERATE(false, true);
  CAPTURE(plan_ahead);
  fixture f(64, 16, 8, plan_ahead);
  auto failed = f.submit(1, prompt_of(6), greedy(5));
  f.executor->fail_next = true;
  f.coordinator.run();
  CHECK(failed->finish.at(0) == engine::finish_reason::error);
  CHECK_THAT(failed->message, Catch::Contains("device lost"));
  auto next = f.submit(2, prompt_of(6), greedy(5));
  f.coordinator.run();
  CHECK(next->tokens.at(0) == reference_run(prompt_of(6), greedy(5), 0, vocab, eos, 128));
  CHECK(f.board.read().is_ready);
}

TEST_CASE("scheduler_actor reports its status on request", "[scheduler_actor]") {
  fixture f;
  caf::scoped_actor self{f.system};
  f.submit(1, prompt_of(6), greedy(5));
  f.coordinator.run();
  std::optional<engine_status> answer;
  self->send(f.scheduler, status_atom::value);
  f.coordinator.run();
  self->receive([&](const engine_status& status) { answer = status; });
  REQUIRE(answer);
  CHECK(answer->is_ready);
  CHECK(answer->num_steps > 0);
}

TEST_CASE("scheduler_actor sends the next step before it hands out the last one's events", "[scheduler_actor]") {
  fixture f;
  // The sink looks at the device's mailbox whenever events arrive.
  struct peeking_sink : recording_sink {
    caf::scheduler::test_coordinator* coordinator = nullptr;
    caf::actor device;
    std::vector<bool> device_had_work;
    void on_events(std::vector<engine::request_output> events) override {
      const bool finished = !events.empty() && events.back().finish;
      device_had_work.push_back(coordinator->has_job() || finished);
      recording_sink::on_events(std::move(events));
    }
  };
  auto sink = std::make_shared<peeking_sink>();
  sink->coordinator = &f.coordinator;
  caf::anon_send(f.scheduler, submit_atom::value, submission{1, prompt_of(6), greedy(6), sink});
  f.coordinator.run();
  REQUIRE(sink->device_had_work.size() == 6);
  // Every step but the last was followed at once by the next: the device was not waiting on the sink.
  for (bool had_work : sink->device_had_work) CHECK(had_work);
  CHECK(f.executor->num_steps == 6);
}

TEST_CASE("with plan_ahead the device finds the next step waiting, and every request its own tokens",
          "[scheduler_actor][plan_ahead]") {
  fixture f(/*num_blocks=*/64, /*max_queued=*/16, /*max_num_seqs=*/8, /*plan_ahead=*/true);
  auto stops = greedy(40);
  stops.ignore_eos = false;  // ends on eos while the step after it is already out
  stops.stop_token_ids = {20, 21, 22, 23, 24};
  std::vector<std::shared_ptr<recording_sink>> sinks;
  std::vector<engine::sampling_params> params;
  for (engine::request_id id = 0; id < 6; ++id) {
    params.push_back(id % 2 == 0 ? greedy(5 + static_cast<std::int32_t>(id)) : stops);
    sinks.push_back(f.submit(id, prompt_of(4 + id, static_cast<engine::token_id>(10 + 7 * id)), params.back()));
  }
  std::size_t most_out = 0;
  while (f.coordinator.has_job()) {
    f.coordinator.run_once();
    most_out = std::max(most_out, f.engine.num_steps_in_flight());
  }
  CHECK(most_out == 2);
  for (engine::request_id id = 0; id < 6; ++id) {
    CAPTURE(id);
    CHECK(sinks[id]->tokens.at(0) ==
          reference_run(prompt_of(4 + id, static_cast<engine::token_id>(10 + 7 * id)), params[id], 0, vocab, eos, 128));
    CHECK(sinks[id]->finish.count(0) == 1);
  }
  const auto stopped = std::count_if(sinks.begin(), sinks.end(), [](const auto& sink) {
    return sink->finish.at(0) == engine::finish_reason::stop;
  });
  CHECK(stopped >= 2);  // stops inside the pipeline did happen
  CHECK(f.engine.get_scheduler().blocks().num_free_blocks() == 64);
  CHECK(f.board.read().num_running == 0);
}

}  // namespace glm4::actors
