// The device actor's one handler, and the blocking call the scheduler's engine makes to it.
#include "actors/device_actor.hpp"

#include <caf/scoped_actor.hpp>
#include <caf/sec.hpp>

#include <exception>
#include <optional>
#include <stdexcept>

namespace glm4::actors {

caf::behavior device_actor(caf::stateful_actor<device_state>* self, std::shared_ptr<engine::step_executor> executor) {
  self->state.executor = std::move(executor);
  return {
      [self](execute_atom, const step_plan& plan) -> caf::result<step_results> {
        try {
          const auto rows = row_samplings(plan);
          return self->state.executor->execute(plan.batch, plan.copies, rows);
        } catch (const std::exception& error) {
          return caf::make_error(caf::sec::runtime_error, std::string(error.what()));
        }
      },
  };
}

caf::actor spawn_device(caf::actor_system& system, std::shared_ptr<engine::step_executor> executor) {
  return system.spawn<caf::detached>(device_actor, std::move(executor));
}

device_executor::device_executor(caf::actor_system& system, caf::actor device, std::string name)
    : system_(system), device_(std::move(device)), name_(std::move(name)) {}

std::vector<engine::sample_result> device_executor::execute(const model::step_batch& batch,
                                                            std::span<const engine::block_copy> copies,
                                                            std::span<const engine::row_sampling> rows) {
  if (!device_) throw std::runtime_error(name_ + " is released");
  caf::scoped_actor self{system_};
  std::optional<step_results> results;
  std::string failure;
  self->request(device_, caf::infinite, execute_atom::value, make_step_plan(batch, copies, rows))
      .receive([&](step_results& answer) { results = std::move(answer); },
               [&](caf::error& error) { failure = system_.render(error); });
  if (!results) throw std::runtime_error(name_ + " failed: " + failure);
  return std::move(*results);
}

}  // namespace glm4::actors
