// Starting and stopping the one-device actor runtime.
#include "actors/local_runtime.hpp"

#include <caf/send.hpp>

namespace glm4::actors {

actor_config::actor_config() {
  set("logger.file-verbosity", caf::atom("quiet"));
  add_message_types<caf::id_block::glm4>();
}

local_runtime::local_runtime(std::shared_ptr<engine::step_executor> device_executor, const engine::engine_config& config,
                             const model::tokenizer* tokenizer, status_board* board, std::size_t max_queued_requests,
                             std::string device_name)
    : system_(config_), device_(spawn_device(system_, std::move(device_executor))),
      executor_(system_, device_, std::move(device_name)), engine_(config, executor_, tokenizer),
      scheduler_(spawn_scheduler(system_, scheduler_actor_config{&engine_, board, max_queued_requests, {device_}})) {}

local_runtime::~local_runtime() { shutdown(); }

void local_runtime::shutdown() {
  if (!scheduler_ && !device_) return;
  if (scheduler_) caf::anon_send_exit(scheduler_, caf::exit_reason::user_shutdown);
  if (device_) caf::anon_send_exit(device_, caf::exit_reason::user_shutdown);
  system_.await_all_actors_done();
  scheduler_ = caf::actor{};
  device_ = caf::actor{};
  executor_.release();
}

}  // namespace glm4::actors
