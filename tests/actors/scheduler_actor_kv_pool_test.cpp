// The scheduler actor sizes the KV pool from its devices' memory reports at start-up, under CAF's
// test coordinator: the smallest device decides, every device allocates the result, and submits
// that came meanwhile wait for it; a pool that cannot be sized leaves the actor not-ready with
// the reason. local_runtime surfaces that reason as its constructor's exception.
#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <stdexcept>
#include <variant>

#include "actors/device_actor.hpp"
#include "actors/error_message.hpp"
#include "actors/local_runtime.hpp"
#include "actors/scheduler_actor.hpp"
#include "tests/actors/promise_sink.hpp"
#include "tests/engine/fake_executor.hpp"

namespace glm4::actors {
namespace {

using engine::testing::greedy;
using engine::testing::prompt_of;
using engine::testing::reference_run;

constexpr std::int64_t vocab = engine::testing::small_vocab;
const std::vector<engine::token_id> eos = engine::testing::small_eos;
constexpr std::uint64_t block_bytes = 1000;

/// The fake model, reporting a budget of `max_blocks` blocks and recording the pool it is given.
struct reporting_executor : engine::testing::fake_executor {
  reporting_executor(std::string name, std::int64_t max_blocks)
      : fake_executor(64, 4, vocab, eos), name(std::move(name)), max_blocks(max_blocks) {}
  engine::memory_report memory() const override {
    return {name, static_cast<std::uint64_t>(max_blocks) * block_bytes, block_bytes};
  }
  void allocate_kv_pool(std::int64_t num_blocks) override {
    if (refuse_allocation) throw std::runtime_error("out of memory");
    allocated = num_blocks;
  }
  std::string name;
  std::int64_t max_blocks;
  bool refuse_allocation = false;
  std::optional<std::int64_t> allocated;
};

struct test_config : actor_config {
  test_config() { set("scheduler.policy", caf::atom("testing")); }
};

engine::engine_config config_with(bool fit_max_model_len) {
  engine::engine_config config = engine::testing::small_engine_config(64);  // 128-token sequences: 32 blocks
  config.scheduler.fit_max_model_len_to_pool = fit_max_model_len;
  return config;
}

/// Two devices of the given budgets; the scheduler is spawned but nothing has run yet.
struct fixture {
  fixture(std::int64_t blocks_0, std::int64_t blocks_1, bool fit_max_model_len)
      : executors{std::make_shared<reporting_executor>("rank 0", blocks_0), std::make_shared<reporting_executor>("rank 1", blocks_1)},
        engine(config_with(fit_max_model_len), nullptr), system(config),
        coordinator(dynamic_cast<caf::scheduler::test_coordinator&>(system.scheduler())) {
    for (auto& executor : executors)
      devices.push_back(system.spawn(device_actor, std::shared_ptr<engine::step_executor>(executor), device_role{}));
    scheduler = system.spawn(scheduler_actor, scheduler_actor_config{&engine, &board, 16, {devices[0]}, devices, "2 devices"});
  }
  ~fixture() {
    caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
    for (auto& device : devices) caf::anon_send_exit(device, caf::exit_reason::user_shutdown);
    coordinator.run();
  }

  std::shared_ptr<promise_sink> submit(engine::request_id id, std::int64_t prompt_len, std::int32_t max_tokens) {
    auto sink = std::make_shared<promise_sink>();
    caf::anon_send(scheduler, submit_atom::value, submission{id, prompt_of(prompt_len), greedy(max_tokens), sink});
    return sink;
  }

  /// The answer to (ready_atom): the pool, or the error's text.
  std::variant<engine::kv_pool_size, std::string> ready() {
    caf::scoped_actor self{system};
    self->send(scheduler, ready_atom::value);
    coordinator.run();
    std::variant<engine::kv_pool_size, std::string> answer;
    self->receive([&](const engine::kv_pool_size& pool) { answer = pool; },
                  [&](const caf::error& error) { answer = error_message(system, error); });
    return answer;
  }

  std::vector<std::shared_ptr<reporting_executor>> executors;
  engine::llm_engine engine;
  status_board board;
  test_config config;
  caf::actor_system system;
  caf::scheduler::test_coordinator& coordinator;
  std::vector<caf::actor> devices;
  caf::actor scheduler;
};

}  // namespace

TEST_CASE("scheduler_actor sizes the pool to the smallest device's report; early submits wait for it",
          "[scheduler_actor][kv_pool]") {
  fixture f(/*blocks_0=*/40, /*blocks_1=*/24, /*fit_max_model_len=*/true);
  auto early = f.submit(1, 30, 10);  // in the mailbox before any report
  f.coordinator.run();
  const auto answer = f.ready();
  REQUIRE(std::holds_alternative<engine::kv_pool_size>(answer));
  const auto& pool = std::get<engine::kv_pool_size>(answer);
  CHECK(pool.num_blocks == 24);
  CHECK(pool.max_model_len == 96);  // 128 did not fit 24 blocks of 4 tokens
  CHECK_THAT(pool.note, Catch::Contains("rank 1"));
  CHECK(f.executors[0]->allocated == 24);
  CHECK(f.executors[1]->allocated == 24);
  CHECK(f.engine.get_scheduler().blocks().num_blocks() == 24);
  CHECK(f.engine.get_scheduler().config().max_model_len == 96);
  REQUIRE(early->finish);
  CHECK(early->tokens == reference_run(prompt_of(30), greedy(10), 0, vocab, eos, 96));
  CHECK(f.board.read().is_ready);
  // Admission follows the sized pool: 97 tokens can never run now.
  auto too_long = f.submit(2, 90, 7);
  f.coordinator.run();
  REQUIRE(too_long->rejected);
  CHECK(too_long->rejected->why == rejection::kind::invalid);
}

TEST_CASE("scheduler_actor reports not-ready while the pool is being sized", "[scheduler_actor][kv_pool]") {
  fixture f(40, 40, false);
  // Until the scheduler has started (and asked for the reports), the board holds its initial value.
  while (f.board.read().not_ready_reason == status_board{}.read().not_ready_reason) {
    REQUIRE(f.coordinator.has_job());
    f.coordinator.run_once();
  }
  const engine_status status = f.board.read();
  CHECK_FALSE(status.is_ready);
  CHECK_THAT(status.not_ready_reason, Catch::Contains("sizing"));
  f.coordinator.run();
  CHECK(f.board.read().is_ready);
  CHECK(std::get<engine::kv_pool_size>(f.ready()).num_blocks == 40);
}

TEST_CASE("a pool short of the configured max_model_len leaves the scheduler not-ready, saying why",
          "[scheduler_actor][kv_pool]") {
  fixture f(40, 24, /*fit_max_model_len=*/false);
  auto early = f.submit(1, 8, 4);
  f.coordinator.run();
  const auto answer = f.ready();
  REQUIRE(std::holds_alternative<std::string>(answer));
  CHECK_THAT(std::get<std::string>(answer), Catch::Contains("max_model_len 128 does not fit") && Catch::Contains("rank 1"));
  REQUIRE(early->rejected);
  CHECK(early->rejected->why == rejection::kind::unavailable);
  CHECK_THAT(early->rejected->message, Catch::Contains("kv_cache_bytes"));
  const engine_status status = f.board.read();
  CHECK_FALSE(status.is_ready);
  CHECK_THAT(status.not_ready_reason, Catch::Contains("max_model_len"));
  CHECK_FALSE(f.executors[0]->allocated);  // nothing was allocated for a pool that cannot serve
}

TEST_CASE("a device that cannot allocate the pool fails the start with its name", "[scheduler_actor][kv_pool]") {
  fixture f(40, 40, false);
  f.executors[1]->refuse_allocation = true;
  f.coordinator.run();
  const auto answer = f.ready();
  REQUIRE(std::holds_alternative<std::string>(answer));
  CHECK_THAT(std::get<std::string>(answer), Catch::Contains("rank 1: cannot allocate the KV pool: out of memory"));
  CHECK_FALSE(f.board.read().is_ready);
}

TEST_CASE("local_runtime starts once the pool is sized, or throws the reason", "[local_runtime][kv_pool]") {
  const engine::engine_config config = config_with(true);
  {
    local_runtime runtime(std::make_shared<reporting_executor>("cpu", 20), config, nullptr, nullptr, 4, "cpu");
    CHECK(runtime.kv_pool().num_blocks == 20);
    CHECK(runtime.kv_pool().max_model_len == 80);
  }
  CHECK_THROWS_WITH(local_runtime(std::make_shared<reporting_executor>("cpu", 0), config, nullptr, nullptr, 4, "cpu"),
                    Catch::Contains("holds no block") && Catch::Contains("cpu"));
}

}  // namespace glm4::actors
