// A device actor owns one device's model shard and KV pages (inside its executor) and runs the
// steps the scheduler plans, answering with sampled ids only. device_executor is the scheduler's
// side: the engine calls it like a local executor and it asks the device actor.
#pragma once

#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "actors/step_plan.hpp"

namespace glm4::actors {

struct device_state {
  std::shared_ptr<engine::step_executor> executor;
  static inline const char* name = "glm4_device";
};

/// (execute_atom, step_plan) -> step_results, or an error naming what failed.
caf::behavior device_actor(caf::stateful_actor<device_state>* self, std::shared_ptr<engine::step_executor> executor);

/// Detached: a step computes for its whole duration.
caf::actor spawn_device(caf::actor_system& system, std::shared_ptr<engine::step_executor> executor);

class device_executor : public engine::step_executor {
 public:
  device_executor(caf::actor_system& system, caf::actor device, std::string name);

  /// Blocks until the device answers; throws std::runtime_error naming the device when it fails
  /// or is gone (the engine then ends the step's requests in error).
  std::vector<engine::sample_result> execute(const model::step_batch& batch, std::span<const engine::block_copy> copies,
                                             std::span<const engine::row_sampling> rows) override;

  /// Drops the handle (CAF joins a detached actor's thread only once none is left).
  void release() { device_ = caf::actor{}; }

 private:
  caf::actor_system& system_;
  caf::actor device_;
  std::string name_;
};

}  // namespace glm4::actors
