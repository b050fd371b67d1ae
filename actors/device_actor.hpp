// A device actor owns one device's model shard and KV pages (inside its executor) and runs its
// part of the steps the scheduler actor plans, answering with sampled ids only.
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
  step_results last_samples;  // what it returned for its last step: a planned-ahead step's fed tokens
  static inline const char* name = "glm4_device";
};

/// (execute_atom, step_plan [, hidden_states]) -> step_results, or an error naming what failed;
/// (memory_atom) -> memory_report; (allocate_atom, num_blocks) -> num_blocks, once, before steps;
/// (group_id_atom, size) -> group_ticket and (join_atom, ticket) -> rank: the stage's collective
/// group, made at start when the layout did not make it (see local_runtime).
caf::behavior device_actor(caf::stateful_actor<device_state>* self, std::shared_ptr<engine::step_executor> executor,
                           device_role role);

/// Detached: a step computes for its whole duration.
caf::actor spawn_device(caf::actor_system& system, std::shared_ptr<engine::step_executor> executor, device_role role = {});

}  // namespace glm4::actors
