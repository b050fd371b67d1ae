// The actor runtime over sharded layouts of a real (random-weight) model: steps go to stage 0,
// hidden states travel stage to stage as messages, tensor-parallel ranks meet in shared-memory
// collectives, and the last stage's rank 0 answers the scheduler. Outputs equal the one-device
// runtime's; a rank killed mid-generation fails the requests in error without hanging anything.
// Sequencing is explicit (futures, a gate, the status board); nothing sleeps.
#include <catch2/catch.hpp>

#include <caf/send.hpp>

#include <functional>
#include <future>

#include "actors/device_layout.hpp"
#include "engine/local_executor.hpp"
#include "tests/actors/promise_sink.hpp"
#include "tests/model/random_model.hpp"

namespace glm4::actors {
namespace {

using namespace std::chrono_literals;

constexpr std::int32_t num_blocks = 48, block_size = 4;

engine::engine_config engine_config_for(const model::model_config& model) {
  engine::engine_config c;
  c.scheduler.num_blocks = num_blocks;
  c.scheduler.block_size = block_size;
  c.scheduler.max_num_batched_tokens = 16;  // prompts longer than this are prefilled in chunks
  c.scheduler.max_num_seqs = 4;
  c.scheduler.max_model_len = 64;
  c.eos_token_ids = {0};
  c.vocab_size = model.vocab_size;
  return c;
}

engine::sampling_params greedy(std::int32_t max_tokens) {
  engine::sampling_params p;
  p.temperature = 0.0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

std::vector<engine::token_id> prompt(std::size_t length, engine::token_id first) {
  std::vector<engine::token_id> ids;
  for (std::size_t i = 0; i < length; ++i) ids.push_back(static_cast<engine::token_id>((first + 37 * i) % 1000 + 1));
  return ids;
}

// Five requests at once (more than max_num_seqs, so some wait), greedy; returns their tokens.
std::vector<std::vector<engine::token_id>> serve_batch(local_runtime& runtime) {
  std::vector<std::shared_ptr<promise_sink>> sinks;
  for (engine::request_id id = 1; id <= 5; ++id) {
    auto sink = std::make_shared<promise_sink>();
    caf::anon_send(runtime.scheduler(), submit_atom::value,
                   submission{id, prompt(3 + 5 * id, static_cast<engine::token_id>(id * 101)), greedy(6 + static_cast<std::int32_t>(id)), sink});
    sinks.push_back(sink);
  }
  std::vector<std::vector<engine::token_id>> outputs;
  for (auto& sink : sinks) {
    REQUIRE(sink->done.get_future().wait_for(60s) == std::future_status::ready);
    CHECK(sink->finish == engine::finish_reason::length);
    outputs.push_back(sink->tokens);
  }
  return outputs;
}

// How a tensor-parallel stage's ranks get their group: made with the layout, or joined at start
// with tickets the runtime hands the device actors (as serve does, for NCCL too).
enum class grouping { at_build, by_messages };

std::vector<std::vector<model::rank_model>> ranks_of(const test::random_model& made, std::int64_t tp, std::int64_t pp,
                                                     grouping groups = grouping::at_build) {
  std::vector<model::stage_shape> stages;
  for (const model::index_range& layers : model::split_layers(made.config.num_layers, pp)) stages.push_back({layers, tp});
  model::group_factory later = [](std::size_t, const std::vector<kernels::backend*>&) {
    return std::vector<std::shared_ptr<kernels::comm::communicator>>{};
  };
  return model::build_sharded_layout(made.config, made.weights, stages,
                                     [](std::size_t, std::int64_t) { return kernels::make_cpu_backend(1); },
                                     groups == grouping::by_messages ? later : model::group_factory{});
}

// A rank's real executor behind a hook that runs before each of its steps (1, 2, ...).
class hooked_stage : public engine::step_executor {
 public:
  hooked_stage(std::shared_ptr<engine::step_executor> inner, std::function<void(int step)> before_step)
      : inner_(std::move(inner)), before_step_(std::move(before_step)) {}

  std::vector<engine::sample_result> execute(const model::step_batch&, std::span<const engine::block_copy>,
                                             std::span<const engine::row_sampling>) override {
    throw std::logic_error("hooked_stage runs stages only");
  }
  engine::stage_output execute_stage(const model::step_batch& batch, std::span<const engine::block_copy> copies,
                                     std::span<const engine::row_sampling> rows, std::span<const float> hidden_in) override {
    before_step_(++num_calls_);
    return inner_->execute_stage(batch, copies, rows, hidden_in);
  }
  void fill_fed_tokens(model::step_batch& batch, std::span<const engine::fed_token> fed,
                       std::span<const engine::sample_result> previous) override {
    inner_->fill_fed_tokens(batch, fed, previous);
  }
  engine::memory_report memory() const override { return inner_->memory(); }
  void allocate_kv_pool(std::int64_t num_blocks) override { inner_->allocate_kv_pool(num_blocks); }
  std::vector<std::uint8_t> make_group_id() override { return inner_->make_group_id(); }
  void join_group(const kernels::comm::group_ticket& ticket) override { inner_->join_group(ticket); }

 private:
  std::shared_ptr<engine::step_executor> inner_;
  std::function<void(int)> before_step_;
  int num_calls_ = 0;
};

// Blocks inside its second step until the test opens the gate, so the test knows which step
// runs when it acts.
struct step_gate {
  std::promise<void> entered, opener;
  std::shared_future<void> open = opener.get_future().share();

  void operator()(int step) {
    if (step != 2) return;
    entered.set_value();
    open.wait();
  }
};

}  // namespace

TEST_CASE("pipeline and tensor-parallel device actors serve the one-device tokens", "[actors][pipeline]") {
  const auto layout = GENERATE(model::checkpoint_layout::glm, model::checkpoint_layout::glm4);
  CAPTURE(model::layout_name(layout));
  const test::random_model made = test::make_random_model(layout);
  const engine::engine_config config = engine_config_for(made.config);

  auto whole_ranks = ranks_of(made, 1, 1);
  local_runtime whole(make_device_layout(whole_ranks, num_blocks, block_size, config.eos_token_ids), config, nullptr,
                      nullptr, 64, describe_layout(whole_ranks));
  const auto want = serve_batch(whole);
  whole.shutdown();

  const std::vector<std::pair<std::int64_t, std::int64_t>> layouts = {{2, 1}, {1, 3}, {2, 2}, {4, 2}};
  const grouping groups = GENERATE(grouping::at_build, grouping::by_messages);
  CAPTURE(groups == grouping::by_messages);
  for (const auto& [tp, pp] : layouts) {
    CAPTURE(tp, pp);
    auto ranks = ranks_of(made, tp, pp, groups);
    status_board board;
    local_runtime sharded(make_device_layout(ranks, num_blocks, block_size, config.eos_token_ids), config, nullptr, &board,
                          64, describe_layout(ranks));
    CHECK(sharded.devices().size() == static_cast<std::size_t>(tp * pp));
    CHECK(serve_batch(sharded) == want);
    const auto idle = board.wait_for([](const engine_status& s) { return s.num_running == 0 && s.num_waiting == 0; }, 30s);
    CHECK(idle.is_ready);
    CHECK(idle.kv_cache_usage == 0.0);
    sharded.shutdown();
  }
}

TEST_CASE("a tensor-parallel rank killed mid-generation fails the requests and leaves the scheduler up, not ready",
          "[actors][pipeline]") {
  const test::random_model made = test::make_random_model(model::checkpoint_layout::glm);
  const engine::engine_config config = engine_config_for(made.config);
  const grouping groups = GENERATE(grouping::at_build, grouping::by_messages);
  CAPTURE(groups == grouping::by_messages);
  auto ranks = ranks_of(made, 2, 2, groups);
  device_layout devices = make_device_layout(ranks, num_blocks, block_size, config.eos_token_ids);
  // Rank 1 of the last stage: the rank the scheduler never talks to directly.
  auto gate = std::make_shared<step_gate>();
  devices[1][1].executor = std::make_shared<hooked_stage>(devices[1][1].executor, [gate](int step) { (*gate)(step); });
  auto entered = gate->entered.get_future();
  status_board board;
  local_runtime runtime(std::move(devices), config, nullptr, &board, 64, describe_layout(ranks));

  auto running = std::make_shared<promise_sink>();
  caf::anon_send(runtime.scheduler(), submit_atom::value, submission{1, prompt(6, 7), greedy(40), running});
  REQUIRE(entered.wait_for(30s) == std::future_status::ready);  // step 2 is in the gated rank
  caf::anon_send_exit(runtime.devices()[3], caf::exit_reason::kill);  // queued behind step 2
  gate->opener.set_value();

  REQUIRE(running->done.get_future().wait_for(60s) == std::future_status::ready);
  CHECK(running->finish == engine::finish_reason::error);
  CHECK_FALSE(running->message.empty());
  CHECK(running->tokens.size() == 2);  // the prefill's token and step 2's

  const auto down = board.wait_for([](const engine_status& s) { return !s.is_ready && s.num_running == 0; }, 30s);
  REQUIRE_FALSE(down.is_ready);
  CHECK_THAT(down.not_ready_reason, Catch::Contains("device"));
  CHECK(down.num_running == 0);
  CHECK(down.kv_cache_usage == 0.0);

  auto later = std::make_shared<promise_sink>();
  caf::anon_send(runtime.scheduler(), submit_atom::value, submission{2, prompt(6, 9), greedy(4), later});
  REQUIRE(later->done.get_future().wait_for(30s) == std::future_status::ready);
  REQUIRE(later->rejected);
  CHECK(later->rejected->why == rejection::kind::unavailable);
  runtime.shutdown();  // returns: no rank is left waiting in a collective
}

TEST_CASE("a tensor-parallel rank whose step throws takes its stage down instead of leaving peers waiting",
          "[actors][pipeline]") {
  const test::random_model made = test::make_random_model(model::checkpoint_layout::glm4);
  const engine::engine_config config = engine_config_for(made.config);
  const grouping groups = GENERATE(grouping::at_build, grouping::by_messages);
  CAPTURE(groups == grouping::by_messages);
  auto ranks = ranks_of(made, 2, 1, groups);
  device_layout devices = make_device_layout(ranks, num_blocks, block_size, config.eos_token_ids);
  // Throws from its second step on, as a device whose kernel failed would.
  devices[0][1].executor = std::make_shared<hooked_stage>(devices[0][1].executor, [](int step) {
    if (step >= 2) throw std::runtime_error("injected kernel failure");
  });
  status_board board;
  local_runtime runtime(std::move(devices), config, nullptr, &board, 64, describe_layout(ranks));

  auto running = std::make_shared<promise_sink>();
  caf::anon_send(runtime.scheduler(), submit_atom::value, submission{1, prompt(5, 3), greedy(10), running});
  REQUIRE(running->done.get_future().wait_for(60s) == std::future_status::ready);
  CHECK(running->finish == engine::finish_reason::error);
  CHECK(running->tokens.size() == 1);  // the prefill's token; step 2 failed on rank 1
  CHECK_THAT(running->message, Catch::Contains("injected kernel failure"));

  // Rank 1 ended on its failure, rank 0 on the aborted collective: the scheduler sees them down.
  const auto down = board.wait_for([](const engine_status& s) { return !s.is_ready && s.num_running == 0; }, 30s);
  REQUIRE_FALSE(down.is_ready);
  CHECK(down.kv_cache_usage == 0.0);
  runtime.shutdown();
}

TEST_CASE("a rank that cannot join its group fails the start with the device and the reason", "[actors][pipeline]") {
  const test::random_model made = test::make_random_model(model::checkpoint_layout::glm);
  const engine::engine_config config = engine_config_for(made.config);
  auto ranks = ranks_of(made, 2, 1, grouping::by_messages);
  device_layout devices = make_device_layout(ranks, num_blocks, block_size, config.eos_token_ids);
  REQUIRE(devices[0][0].joins_group);
  REQUIRE(devices[0][1].joins_group);
  // Rank 1's join fails as a GPU whose NCCL init failed would.
  class refusing_join : public hooked_stage {
   public:
    using hooked_stage::hooked_stage;
    void join_group(const kernels::comm::group_ticket&) override { throw std::runtime_error("ncclCommInitRank failed"); }
  };
  devices[0][1].executor = std::make_shared<refusing_join>(devices[0][1].executor, [](int) {});
  CHECK_THROWS_WITH(local_runtime(std::move(devices), config, nullptr, nullptr, 64, describe_layout(ranks)),
                    Catch::Contains("cannot join rank 1 of its tensor-parallel group: ncclCommInitRank failed"));
}

}  // namespace glm4::actors
