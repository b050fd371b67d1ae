// The device actor's handlers: run this rank's part, then hand on the hidden states or answer.
#include "actors/device_actor.hpp"

#include <caf/sec.hpp>
#include <caf/send.hpp>

#include <exception>
#include <span>
#include <stdexcept>

namespace glm4::actors {
namespace {

using self_pointer = caf::stateful_actor<device_state>*;

caf::result<step_results> run_step(self_pointer self, const step_plan& plan, std::span<const float> hidden_in) {
  auto& state = self->state;
  engine::stage_output output;
  try {
    const auto rows = row_samplings(plan);
    if (plan.fed.empty()) {
      output = state.executor->execute_stage(plan.batch, plan.copies, rows, hidden_in);
    } else {  // planned before the previous step's samples were known: they go in here
      model::step_batch batch = plan.batch;
      state.executor->fill_fed_tokens(batch, plan.fed, state.last_samples);
      output = state.executor->execute_stage(batch, plan.copies, rows, hidden_in);
    }
  } catch (const std::exception& error) {
    state.last_samples.clear();  // a step planned after this one must not take stale tokens
    auto failure = caf::make_error(caf::sec::runtime_error, std::string(error.what()));
    // Peers share this step's collectives: a rank that failed one leaves its group unusable,
    // so it ends, which aborts the group and lets the scheduler see the device go down.
    if (state.role.on_down) self->quit(failure);
    return failure;
  }
  if (state.role.next_stage.empty() || !state.role.hands_on) {
    state.last_samples = output.samples;
    return std::move(output.samples);
  }
  const hidden_states hidden{std::move(output.hidden)};
  const auto& next = state.role.next_stage;
  for (std::size_t rank = 1; rank < next.size(); ++rank) caf::anon_send(next[rank], execute_atom::value, plan, hidden);
  // The next stage's rank 0 answers whoever asked this one: the samples skip the stages between.
  auto promise = self->make_response_promise();
  promise.delegate(next.front(), execute_atom::value, plan, hidden);
  return promise;
}

}  // namespace

caf::behavior device_actor(self_pointer self, std::shared_ptr<engine::step_executor> executor, device_role role) {
  self->state.executor = std::move(executor);
  self->state.role = std::move(role);
  if (self->state.role.on_down) {
    auto on_down = self->state.role.on_down;
    auto* system = &self->system();
    self->attach_functor([on_down, system](const caf::error& reason) {
      on_down("a device of the layout is down (" + system->render(reason) + ")");
    });
  }
  return {
      [self](execute_atom, const step_plan& plan) { return run_step(self, plan, {}); },
      [self](execute_atom, const step_plan& plan, const hidden_states& hidden) { return run_step(self, plan, hidden.values); },
      [self](memory_atom) { return self->state.executor->memory(); },
      [self](allocate_atom, std::int64_t num_blocks) -> caf::result<std::int64_t> {
        try {
          self->state.executor->allocate_kv_pool(num_blocks);
        } catch (const std::exception& error) {
          return caf::make_error(caf::sec::runtime_error, self->state.executor->memory().device +
                                                              ": cannot allocate the KV pool: " + error.what());
        }
        return num_blocks;
      },
      [self](group_id_atom, std::int32_t size) -> caf::result<kernels::comm::group_ticket> {
        try {
          return kernels::comm::group_ticket{self->state.executor->make_group_id(), 0, size};
        } catch (const std::exception& error) {
          return caf::make_error(caf::sec::runtime_error, self->state.executor->memory().device +
                                                              ": cannot make a tensor-parallel group: " + error.what());
        }
      },
      // Blocks this actor's own thread (it is detached) until every rank has joined.
      [self](join_atom, const kernels::comm::group_ticket& ticket) -> caf::result<std::int32_t> {
        try {
          self->state.executor->join_group(ticket);
        } catch (const std::exception& error) {
          return caf::make_error(caf::sec::runtime_error, self->state.executor->memory().device + ": cannot join rank " +
                                                              std::to_string(ticket.rank) + " of its tensor-parallel group: " +
                                                              error.what());
        }
        return ticket.rank;
      },
  };
}

caf::actor spawn_device(caf::actor_system& system, std::shared_ptr<engine::step_executor> executor, device_role role) {
  return system.spawn<caf::detached>(device_actor, std::move(executor), std::move(role));
}

}  // namespace glm4::actors
