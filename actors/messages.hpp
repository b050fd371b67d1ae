// Every message the actors exchange, in one CAF 0.17.6 type-id block:
//   (submit_atom, submission)          http -> scheduler: queue a request, events go to its sink
//   (abort_atom, request_id)           http -> scheduler: the client left; free its blocks now
//   (step_atom)                        scheduler -> itself: run one engine step
//   (status_atom) -> engine_status     anyone -> scheduler: the current counts
//   (ready_atom) -> kv_pool_size       anyone -> scheduler: answered once the KV pool is sized
//                                      (an error naming the setting when it cannot be)
//   (memory_atom) -> memory_report     scheduler -> every device, at start: its KV budget
//   (allocate_atom, int64 num_blocks) -> int64   scheduler -> every device: make the KV pool
//   (group_id_atom, int32 size) -> group_ticket  head -> a tensor-parallel stage's rank 0, at start:
//                                      a new id for the stage's collective group (NCCL's unique id)
//   (join_atom, group_ticket) -> int32 rank      head -> every rank of that stage, all at once:
//                                      join the group (NCCL returns once all ranks have joined)
//   (execute_atom, step_plan) -> step_results   scheduler -> first-stage devices: run one step
//   (execute_atom, step_plan, hidden_states) -> step_results
//                                      a stage's rank 0 -> the next stage's devices; the last
//                                      stage's rank 0 answers the scheduler (delegated), the
//                                      others answer with no samples
#pragma once

#include <cstdint>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/type_id.hpp>

#include "actors/engine_status.hpp"
#include "actors/request_sink.hpp"
#include "actors/plan_serialization.hpp"
#include "actors/step_plan.hpp"
#include "engine/sampling_params.hpp"

namespace glm4::actors {

/// One request for the scheduler. It stays in the head's process (the sink is a local object),
/// so it is whitelisted rather than serialized.
struct submission {
  engine::request_id id = 0;
  std::vector<engine::token_id> prompt;
  engine::sampling_params params;
  request_sink_ptr sink;
};

/// A stage's output activations (T, H) F32 row-major, on their way to the next stage.
struct hidden_states {
  std::vector<float> values;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hidden_states& x) {
  return f(caf::meta::type_name("hidden_states"), x.values);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, engine_status& x) {
  return f(caf::meta::type_name("engine_status"), x.is_ready, x.not_ready_reason, x.num_running, x.num_waiting,
           x.kv_cache_usage, x.num_steps,
           x.num_prefix_hit_tokens, x.num_preemptions);
}

}  // namespace glm4::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(glm4::actors::submission)

CAF_BEGIN_TYPE_ID_BLOCK(glm4, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(glm4, (glm4::actors::engine_status))
CAF_ADD_TYPE_ID(glm4, (glm4::engine::kv_pool_size))
CAF_ADD_TYPE_ID(glm4, (glm4::engine::memory_report))
CAF_ADD_TYPE_ID(glm4, (glm4::actors::hidden_states))
CAF_ADD_TYPE_ID(glm4, (glm4::actors::step_plan))
CAF_ADD_TYPE_ID(glm4, (glm4::actors::step_results))
CAF_ADD_TYPE_ID(glm4, (glm4::kernels::comm::group_ticket))
CAF_ADD_ATOM(glm4, glm4::actors, submit_atom, "submit")
CAF_ADD_ATOM(glm4, glm4::actors, abort_atom, "abort")
CAF_ADD_ATOM(glm4, glm4::actors, step_atom, "step")
CAF_ADD_ATOM(glm4, glm4::actors, status_atom, "status")
CAF_ADD_ATOM(glm4, glm4::actors, execute_atom, "execute")
CAF_ADD_ATOM(glm4, glm4::actors, ready_atom, "ready")
CAF_ADD_ATOM(glm4, glm4::actors, memory_atom, "memory")
CAF_ADD_ATOM(glm4, glm4::actors, allocate_atom, "allocate")
CAF_ADD_ATOM(glm4, glm4::actors, group_id_atom, "group_id")
CAF_ADD_ATOM(glm4, glm4::actors, join_atom, "join")
CAF_END_TYPE_ID_BLOCK(glm4)
