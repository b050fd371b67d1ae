// Starting and stopping the actor runtime of one process.
#include "actors/local_runtime.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <stdexcept>

#include "actors/error_message.hpp"

namespace glm4::actors {
namespace {

// Spawns the stages last to first, so each rank 0 knows the next stage's actors; returns every
// actor stage by stage, and the first stage's ranks.
std::vector<caf::actor> spawn_layout(caf::actor_system& system, device_layout& layout, std::vector<caf::actor>& first_stage) {
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
  first_stage = stages.front();
  std::vector<caf::actor> all;
  for (auto& stage : stages) all.insert(all.end(), stage.begin(), stage.end());
  return all;
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
  std::vector<caf::actor> first_stage;
  const bool first_stage_samples = layout.size() == 1;
  devices_ = spawn_layout(system_, layout, first_stage);
  scheduler_ = spawn_scheduler(system_, scheduler_actor_config{&engine_, board, max_queued_requests, std::move(first_stage),
                                                               devices_, std::move(layout_name), plan_ahead && first_stage_samples});
  std::string failure;
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
