// Device actors on CAF's real threads: steps go scheduler -> device -> scheduler as messages, and
// a device that dies mid-generation fails its requests in error without losing the scheduler.
// Sequencing is explicit (futures on the sinks, a condition wait on the status board); nothing sleeps.
#include <catch2/catch.hpp>

#include <caf/send.hpp>

#include <future>
#include <numeric>

#include "actors/local_runtime.hpp"
#include "tests/actors/promise_sink.hpp"
#include "tests/engine/fake_executor.hpp"

namespace glm4::actors {
namespace {

using engine::testing::fake_executor;
using engine::testing::prompt_of;
using engine::testing::reference_run;
using namespace std::chrono_literals;

constexpr std::int64_t vocab = engine::testing::small_vocab;
constexpr std::int32_t num_blocks = 64;
const std::vector<engine::token_id> eos = engine::testing::small_eos;

// Blocks inside its second step until the test opens the gate, so the test knows exactly which
// step is running when it acts.
class gated_executor : public engine::step_executor {
 public:
  gated_executor() : inner_(num_blocks, 4, vocab, eos) {}

  std::vector<engine::sample_result> execute(const model::step_batch& batch, std::span<const engine::block_copy> copies,
                                             std::span<const engine::row_sampling> rows) override {
    if (++num_calls_ == 2) {
      entered.set_value();
      gate_.wait();
    }
    return inner_.execute(batch, copies, rows);
  }

  std::promise<void> entered;
  void open() { opener_.set_value(); }

 private:
  fake_executor inner_;
  int num_calls_ = 0;
  std::promise<void> opener_;
  std::shared_future<void> gate_ = opener_.get_future().share();
};

engine::sampling_params sampled(std::int32_t max_tokens, std::uint64_t seed) {
  engine::sampling_params p;
  p.temperature = 0.8;
  p.top_k = 20;
  p.repetition_penalty = 1.2;  // reads the copied token history on the device
  p.seed = seed;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

// The whole runtime in one process over a fake device; submits go straight to the scheduler.
struct runtime {
  explicit runtime(std::shared_ptr<engine::step_executor> device_executor =
                       std::make_shared<fake_executor>(num_blocks, 4, vocab, eos))
      : actors(std::move(device_executor), engine::testing::small_engine_config(num_blocks), nullptr, &board, 64,
               "device cpu:0") {}

  std::shared_ptr<promise_sink> submit(engine::request_id id, std::vector<engine::token_id> prompt,
                                       const engine::sampling_params& params) {
    auto sink = std::make_shared<promise_sink>();
    caf::anon_send(actors.scheduler(), submit_atom::value, submission{id, std::move(prompt), params, sink});
    return sink;
  }

  status_board board;
  local_runtime actors;
};

}  // namespace

TEST_CASE("steps through a device actor give the tokens of a local run", "[device_actor]") {
  runtime rt;
  std::vector<std::shared_ptr<promise_sink>> sinks;
  for (engine::request_id id = 1; id <= 4; ++id)
    sinks.push_back(rt.submit(id, prompt_of(5 + id, static_cast<engine::token_id>(id)), sampled(9, id * 11)));
  for (engine::request_id id = 1; id <= 4; ++id) {
    auto& sink = *sinks[id - 1];
    REQUIRE(sink.done.get_future().wait_for(30s) == std::future_status::ready);
    CHECK(sink.finish == engine::finish_reason::length);
    CHECK(sink.tokens ==
          reference_run(prompt_of(5 + id, static_cast<engine::token_id>(id)), sampled(9, id * 11), id * 11, vocab, eos, 128));
  }
  const auto idle = rt.board.wait_for([](const engine_status& s) { return s.num_running == 0; }, 30s);
  CHECK(idle.is_ready);
  CHECK(idle.kv_cache_usage == 0.0);
}

TEST_CASE("a device actor killed mid-generation fails its requests and leaves the scheduler up, not ready",
          "[device_actor]") {
  auto gated = std::make_shared<gated_executor>();
  auto entered = gated->entered.get_future();
  runtime rt(gated);
  auto running = rt.submit(1, prompt_of(6), sampled(100, 5));
  REQUIRE(entered.wait_for(30s) == std::future_status::ready);  // step 2 is running on the device
  caf::anon_send_exit(rt.actors.devices().front(), caf::exit_reason::kill);  // queued behind it: step 3 finds the device gone
  gated->open();

  REQUIRE(running->done.get_future().wait_for(30s) == std::future_status::ready);
  CHECK(running->finish == engine::finish_reason::error);
  CHECK_FALSE(running->message.empty());
  CHECK(running->tokens.size() == 2);  // the prefill's token and step 2's

  const auto down = rt.board.wait_for([](const engine_status& s) { return !s.is_ready && s.num_running == 0; }, 30s);
  REQUIRE_FALSE(down.is_ready);
  CHECK_THAT(down.not_ready_reason, Catch::Contains("device"));
  CHECK(down.num_running == 0);
  CHECK(down.kv_cache_usage == 0.0);

  // The scheduler still answers: a new request is refused plainly instead of hanging.
  auto later = rt.submit(2, prompt_of(6), sampled(4, 6));
  REQUIRE(later->done.get_future().wait_for(30s) == std::future_status::ready);
  REQUIRE(later->rejected);
  CHECK(later->rejected->why == rejection::kind::unavailable);
}

}  // namespace glm4::actors
