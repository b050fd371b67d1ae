// The scheduler actor: the one owner of the engine's continuous batching. Requests arrive as
// messages from any thread. It plans a step, sends it to the first pipeline stage's device actors
// and goes on handling messages while the devices compute (it never blocks on them): submits join
// the queue at once, aborts and a device going down take effect when a step is back. With
// plan_ahead it plans and sends the step after the one out at once, so a device starts it the
// moment it has finished the first (two steps out at most). When a step's samples arrive it
// applies them and sends the next step before it hands out this step's events.
//
//   (submit) --queue full--> sink.on_rejected(overloaded)
//      |     --bad request--> sink.on_rejected(invalid)
//      v  sink.on_accepted()
//   QUEUED --first step--> sink.on_scheduled() --> RUNNING --each step--> sink.on_events(...)
//      |                                              |
//      +------------(abort) / finish / step fails-----+--> erased; its blocks are free
//
// At start the actor sizes the KV pool: every device reports what it can hold (memory_atom), the
// smallest decides (engine::size_kv_pool), every device allocates that pool (allocate_atom), and
// only then does the engine take requests; submits that arrive meanwhile wait. A pool that cannot
// be sized leaves the actor not-ready with the reason, which (ready_atom) answers too.
//
// A monitored device going down fails every request in error and leaves the actor not-ready:
// later submits are rejected as unavailable (/health answers 503 with the reason).
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/response_promise.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/messages.hpp"
#include "engine/llm_engine.hpp"

namespace glm4::actors {

struct scheduler_actor_config {
  engine::llm_engine* engine = nullptr;  // outlives the actor; its steps run on the devices
  status_board* board = nullptr;         // may be null; written after every change
  std::size_t max_queued_requests = 256; // requests waiting for their first step; more get 429
  std::vector<caf::actor> first_stage;   // the ranks every step is sent to, rank 0 (which answers with samples) first
  std::vector<caf::actor> devices;       // monitored (one going down fails every request); size the KV pool
  std::string layout_name = "the devices";  // names them in errors
  /// Plan each step while the one before is out (llm_engine::plan_step's planning ahead), so the
  /// devices find it waiting. Only where the first stage samples (one pipeline stage): its rank 0
  /// fills the fed tokens from its own samples.
  bool plan_ahead = false;
};

struct scheduler_state {
  struct tracked_request {
    request_sink_ptr sink;
    bool is_scheduled = false;
  };

  /// A step the devices are running.
  struct step_in_flight {
    engine::planned_step step;  // step.serial identifies the answers
    std::size_t num_awaited = 0;          // first-stage answers still to come
    std::optional<step_results> samples;  // rank 0's answer
    std::string failure;                  // the first error, if any
  };

  /// Start-up: the devices' memory reports, then their allocations, still to come.
  struct pool_sizing {
    std::vector<engine::memory_report> reports;
    std::size_t num_awaited = 0;
    bool is_allocating = false;
    std::string failure;  // the first error, if any
  };

  scheduler_actor_config config;
  std::optional<pool_sizing> sizing;        // set until the pool is sized (or could not be)
  std::optional<engine::kv_pool_size> pool;  // once every device has allocated it
  std::vector<submission> held;              // submits that came while sizing
  std::vector<caf::response_promise> awaiting_ready;
  std::unordered_map<engine::request_id, tracked_request> requests;
  std::size_t num_queued = 0;
  bool is_step_pending = false;  // a step_atom is in the mailbox
  std::deque<step_in_flight> in_flight;  // oldest first; two at most (plan_ahead)
  std::vector<engine::request_id> deferred_aborts;  // arrived while a step was out
  bool is_failed = false;        // a device went down or a step threw: nothing runs any more
  bool fail_after_step = false;  // the failure came during a step: end every request once all are back
  std::string failure;

  static inline const char* name = "glm4_scheduler";
};

caf::behavior scheduler_actor(caf::stateful_actor<scheduler_state>* self, scheduler_actor_config config);

/// Spawned detached: a step runs the model and blocks for its duration, so it gets a thread of
/// its own instead of one of CAF's workers.
caf::actor spawn_scheduler(caf::actor_system& system, scheduler_actor_config config);

}  // namespace glm4::actors
