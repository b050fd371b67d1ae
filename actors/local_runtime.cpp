// Starting and stopping the actor runtime of one process.
#include "actors/local_runtime.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <stdexcept>

#include "actors/error_message.hpp"

namespace glm4::actors {
namespace {

using namespace std::chrono_literals;

// NCCL ranks on other hosts may take a while to come up; a rank that never joins fails the start.
constexpr auto group_join_timeout = 5min;

// Spawns the stages last to first, so each rank 0 knows the next stage's actors; returns the
// actors stage by stage.
std::vector<std::vector<caf::actor>> spawn_layout(caf::actor_system& system, device_layout& layout) {
  if (layout.empty()) throw std::invalid_argument("local_runtime: the layout has no stage");
  std::vector<std::vector<caf::actor>> stages(layout.size());
  for (std::size_t s = layout.size(); s-- > 0;) {
    if (layout[s].empty()) throw std::invalid_argument("local_runtime: stage " + std::to_string(s) + " has no rank");
    for (std::size_t r = 0; r < layout[s].size(); ++r) {
      device_role role;
      if (s + 1 < layout.size()) role.next_stage = stages[s + 1];
      role.hands_on = r == 0;
      role.on_down = std::move(layout[s][r].abort_peers);
      stages[s].push_back(spawn_device(system, std::move(layout[s][r].executor), std::move(role)));
    }
  }
  return stages;
}

// The stage's rank 0 makes the group id; every rank gets its ticket before any answer is awaited,
// since an NCCL rank returns only once all have joined. Returns the first failure, or "".
std::string join_stage_group(caf::actor_system& system, const std::vector<caf::actor>& ranks) {
  caf::scoped_actor self{system};
  const auto size = static_cast<std::int32_t>(ranks.size());
  std::string failure;
  kernels::comm::group_ticket ticket;
  self->request(ranks.front(), group_join_timeout, group_id_atom::value, size)
      .receive([&](const kernels::comm::group_ticket& made) { ticket = made; },
               [&](const caf::error& error) { failure = error_message(system, error); });
  if (!failure.empty()) return failure;
  std::vector<decltype(self->request(ranks.front(), group_join_timeout, join_atom::value, ticket))> joins;
  for (std::int32_t rank = 0; rank < size; ++rank) {
    ticket.rank = rank;
    joins.push_back(self->request(ranks[static_cast<std::size_t>(rank)], group_join_timeout, join_atom::value, ticket));
  }
  for (auto& join : joins)
    join.receive([](std::int32_t) {},
                 [&](const caf::error& error) {
                   if (failure.empty()) failure = error_message(system, error);
                 });
  return failure;
}

device_layout one_device(std::shared_ptr<engine::step_executor> executor) {
  device_layout layout(1);
  layout[0].push_back(device_slot{std::move(executor), {}});
  return layout;
}

}  // namespace

actor_config::actor_config() {
  set("logger.file-verbosity", caf::atom("quiet"));
  add_message_types<caf::id_block::glm4>();
}

local_runtime::local_runtime(device_layout layout, const engine::engine_config& config, const model::tokenizer* tokenizer,
                             status_board* board, std::size_t max_queued_requests, std::string layout_name,
                             bool plan_ahead)
    : system_(config_), engine_(config, tokenizer) {
  const bool first_stage_samples = layout.size() == 1;
  const std::vector<std::vector<caf::actor>> stages = spawn_layout(system_, layout);
  for (const auto& stage : stages) devices_.insert(devices_.end(), stage.begin(), stage.end());
  std::string failure;
  // Groups first: NCCL takes device memory, which the memory reports below must see gone.
  for (std::size_t s = 0; s < stages.size() && failure.empty(); ++s)
    if (layout[s].front().joins_group) failure = join_stage_group(system_, stages[s]);
  if (!failure.empty()) {
    shutdown();
    throw std::runtime_error(failure);
  }
  scheduler_ = spawn_scheduler(system_, scheduler_actor_config{&engine_, board, max_queued_requests, stages.front(),
                                                               devices_, std::move(layout_name), plan_ahead && first_stage_samples});
  {
    caf::scoped_actor self{system_};
    self->request(scheduler_, caf::infinite, ready_atom::value)
        .receive([&](const engine::kv_pool_size& pool) { kv_pool_ = pool; },
                 [&](const caf::error& error) { failure = error_message(system_, error); });
  }
  if (!failure.empty()) {
    shutdown();
    throw std::runtime_error(failure);
  }
}

local_runtime::local_runtime(std::shared_ptr<engine::step_executor> device_executor, const engine::engine_config& config,
                             const model::tokenizer* tokenizer, status_board* board, std::size_t max_queued_requests,
                             std::string device_name)
    : local_runtime(one_device(std::move(device_executor)), config, tokenizer, board, max_queued_requests,
                    std::move(device_name)) {}

local_runtime::~local_runtime() { shutdown(); }

void local_runtime::shutdown() {
  if (!scheduler_ && devices_.empty()) return;
  if (scheduler_) caf::anon_send_exit(scheduler_, caf::exit_reason::user_shutdown);
  for (const caf::actor& device : devices_) caf::anon_send_exit(device, caf::exit_reason::user_shutdown);
  system_.await_all_actors_done();
  scheduler_ = caf::actor{};
  devices_.clear();
}

}  // namespace glm4::actors
