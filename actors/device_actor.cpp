// The device actor's handlers, and the blocking call the scheduler's engine makes to stage 0.
#include "actors/device_actor.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>

#include <exception>
#include <optional>
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
    output = state.executor->execute_stage(plan.batch, plan.copies, rows, hidden_in);
  } catch (const std::exception& error) {
    auto failure = caf::make_error(caf::sec::runtime_error, std::string(error.what()));
    // Peers share this step's collectives: a rank that failed one leaves its group unusable,
    // so it ends, which aborts the group and lets the scheduler see the device go down.
    if (state.role.on_down) self->quit(failure);
    return failure;
  }
  if (state.role.next_stage.empty() || !state.role.hands_on) return std::move(output.samples);
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
  };
}

caf::actor spawn_device(caf::actor_system& system, std::shared_ptr<engine::step_executor> executor, device_role role) {
  return system.spawn<caf::detached>(device_actor, std::move(executor), std::move(role));
}

device_executor::device_executor(caf::actor_system& system, std::vector<caf::actor> first_stage, std::string name)
    : system_(system), first_stage_(std::move(first_stage)), name_(std::move(name)) {}

std::vector<engine::sample_result> device_executor::execute(const model::step_batch& batch,
                                                            std::span<const engine::block_copy> copies,
                                                            std::span<const engine::row_sampling> rows) {
  if (first_stage_.empty()) throw std::runtime_error(name_ + " is released");
  caf::scoped_actor self{system_};
  const step_plan plan = make_step_plan(batch, copies, rows);
  // Every rank gets the step before any answer is awaited: they run it together.
  using handle = decltype(self->request(first_stage_.front(), caf::infinite, execute_atom::value, plan));
  std::vector<handle> pending;
  pending.reserve(first_stage_.size());
  for (const caf::actor& rank : first_stage_) pending.push_back(self->request(rank, caf::infinite, execute_atom::value, plan));
  std::optional<step_results> samples;
  std::string failure;
  for (std::size_t rank = 0; rank < pending.size(); ++rank)
    pending[rank].receive(
        [&](step_results& answer) {
          if (rank == 0) samples = std::move(answer);
        },
        [&](caf::error& error) {
          if (failure.empty()) failure = system_.render(error);
        });
  if (!failure.empty() || !samples) throw std::runtime_error(name_ + " failed: " + failure);
  return std::move(*samples);
}

}  // namespace glm4::actors
