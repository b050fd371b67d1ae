// A device actor owns one device's model shard and KV pages (inside its executor) and runs its
// part of the steps the scheduler plans, answering with sampled ids only. device_executor is the
// scheduler's side: the engine calls it like a local executor and it asks the first stage.
//
// A step through a pipeline of tensor-parallel stages (hidden states travel as messages; the
// ranks of a stage meet only in kernels/comm collectives, never in a mailbox):
//
//   scheduler --plan--> stage 0 ranks --rank 0: plan + hidden--> stage 1 ranks --> ... last stage
//       ^                  (ranks > 0 answer with no samples)                          |
//       +------------------- last stage's rank 0 answers (the request is delegated) ---+
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "actors/step_plan.hpp"

namespace glm4::actors {

/// Where a device actor sits in the layout.
struct device_role {
  std::vector<caf::actor> next_stage;  // the next stage's ranks, rank 0 first; empty on the last stage
  bool hands_on = true;                // tensor-parallel rank 0: passes the hidden states on, or answers with samples
  /// Called once when the actor ends, for any reason: aborts the collectives its peers may be
  /// waiting in. Set when the device has peers; a device with peers that fails a step ends.
  std::function<void(const std::string& why)> on_down;
};

struct device_state {
  std::shared_ptr<engine::step_executor> executor;
  device_role role;
  static inline const char* name = "glm4_device";
};

/// (execute_atom, step_plan [, hidden_states]) -> step_results, or an error naming what failed.
caf::behavior device_actor(caf::stateful_actor<device_state>* self, std::shared_ptr<engine::step_executor> executor,
                           device_role role);

/// Detached: a step computes for its whole duration.
caf::actor spawn_device(caf::actor_system& system, std::shared_ptr<engine::step_executor> executor, device_role role = {});

class device_executor : public engine::step_executor {
 public:
  /// `first_stage`: the ranks of pipeline stage 0, rank 0 first.
  device_executor(caf::actor_system& system, std::vector<caf::actor> first_stage, std::string name);

  /// Sends the step to every first-stage rank and blocks until all have answered; returns the
  /// samples that come back through rank 0. Throws std::runtime_error naming the layout when a
  /// device fails or is gone (the engine then ends the step's requests in error).
  std::vector<engine::sample_result> execute(const model::step_batch& batch, std::span<const engine::block_copy> copies,
                                             std::span<const engine::row_sampling> rows) override;

  /// Sets the ranks of stage 0 (for a runtime that spawns its devices after building the engine).
  void connect(std::vector<caf::actor> first_stage) { first_stage_ = std::move(first_stage); }
  /// Drops the handles (CAF joins a detached actor's thread only once none is left).
  void release() { first_stage_.clear(); }

 private:
  caf::actor_system& system_;
  std::vector<caf::actor> first_stage_;
  std::string name_;
};

}  // namespace glm4::actors
