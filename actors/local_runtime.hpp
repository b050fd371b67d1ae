// The actors of one process serving one device: a device actor over the executor that owns the
// model and KV pages, and the scheduler actor whose engine steps through it. serve and bench run
// this; tests run it over fake executors.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/device_actor.hpp"
#include "actors/scheduler_actor.hpp"

namespace glm4::actors {

/// The CAF settings every glm4 actor system uses: our message types, no log file.
struct actor_config : caf::actor_system_config {
  actor_config();
};

class local_runtime {
 public:
  /// `board` may be null. The tokenizer (may be null) outlives the runtime.
  local_runtime(std::shared_ptr<engine::step_executor> device_executor, const engine::engine_config& config,
                const model::tokenizer* tokenizer, status_board* board, std::size_t max_queued_requests,
                std::string device_name);
  ~local_runtime();

  caf::actor_system& system() { return system_; }
  const caf::actor& scheduler() const { return scheduler_; }
  const caf::actor& device() const { return device_; }

  /// Stops both actors and waits for them. CAF 0.17 joins a detached actor's thread only once no
  /// handle to it is left, so every handle is dropped here, the caller's must be too.
  void shutdown();

 private:
  actor_config config_;
  caf::actor_system system_;
  caf::actor device_;
  device_executor executor_;
  engine::llm_engine engine_;
  caf::actor scheduler_;
};

}  // namespace glm4::actors
