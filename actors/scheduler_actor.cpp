// The scheduler actor's handlers; see scheduler_actor.hpp for the request life cycle.
#include "actors/scheduler_actor.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <map>
#include <utility>

#include <caf/send.hpp>

#include "actors/error_message.hpp"

namespace glm4::actors {
namespace {

using self_pointer = caf::stateful_actor<scheduler_state>*;

engine_status current_status(const scheduler_state& state) {
  engine_status status;
  status.is_ready = !state.is_failed && !state.sizing;
  status.not_ready_reason = state.is_failed ? state.failure : state.sizing ? "sizing the KV cache pool" : "";
  const auto& blocks = state.config.engine->get_scheduler().blocks();
  status.num_waiting = static_cast<std::int64_t>(state.num_queued);
  status.num_running = static_cast<std::int64_t>(state.requests.size() - state.num_queued);
  status.kv_cache_usage = blocks.num_blocks() == 0 ? 0.0
                                                   : static_cast<double>(blocks.num_used_blocks()) / blocks.num_blocks();
  const engine::engine_stats& stats = state.config.engine->stats();
  status.num_steps = stats.num_steps;
  status.num_prefix_hit_tokens = stats.num_prefix_hit_tokens;
  status.num_preemptions = stats.num_preemptions;
  return status;
}

void publish(const scheduler_state& state) {
  if (state.config.board != nullptr) state.config.board->publish(current_status(state));
}

void schedule_next_step(self_pointer self) {
  auto& state = self->state;
  if (state.is_step_pending || !state.in_flight.empty() || state.is_failed || !state.config.engine->has_unfinished()) return;
  state.is_step_pending = true;
  self->send(self, step_atom::value);
}

// Tells each request that left the queue in the step just planned, before its first tokens
// arrive. Requests the engine no longer has (aborted, events not yet delivered) are skipped.
void note_scheduled(scheduler_state& state, std::chrono::steady_clock::time_point step_start) {
  for (auto& [id, request] : state.requests) {
    const engine::llm_engine& engine = *state.config.engine;
    if (request.is_scheduled || !engine.has_request(id) || engine.is_queued(id)) continue;
    request.is_scheduled = true;
    --state.num_queued;
    request.sink->on_scheduled(step_start);
  }
}

// Hands each request its events (in order) and forgets the requests that ended.
void deliver(scheduler_state& state, std::vector<engine::request_output> events) {
  std::map<engine::request_id, std::vector<engine::request_output>> by_request;
  for (auto& event : events) by_request[event.request].push_back(std::move(event));
  for (auto& [id, request_events] : by_request) {
    const auto found = state.requests.find(id);
    if (found == state.requests.end()) continue;
    found->second.sink->on_events(std::move(request_events));
    if (state.config.engine->has_request(id)) continue;
    if (!found->second.is_scheduled) --state.num_queued;
    state.requests.erase(found);
  }
}

void reject(const request_sink_ptr& sink, rejection::kind why, std::string message) {
  if (sink) sink->on_rejected(rejection{why, std::move(message)});
}

// Every request ends in error: the events, appended to `events`.
void end_everything(scheduler_state& state, std::vector<engine::request_output>& events) {
  for (const auto& [id, request] : state.requests)
    for (auto& event : state.config.engine->abort(id)) {
      event.finish = engine::finish_reason::error;
      event.message = state.failure;
      events.push_back(std::move(event));
    }
}

// A failure outside the engine's own error path: every request ends in error and the actor
// stops stepping, reporting not-ready, so the operator sees it instead of a hang. During a step
// the requests end when it is back (its sequences must stay as planned until then).
void fail_everything(scheduler_state& state, const std::string& message) {
  state.is_failed = true;
  state.failure = message;
  state.sizing.reset();
  for (submission& request : state.held) reject(request.sink, rejection::kind::unavailable, message);
  state.held.clear();
  for (caf::response_promise& promise : state.awaiting_ready) promise.deliver(caf::make_error(caf::sec::runtime_error, message));
  state.awaiting_ready.clear();
  if (!state.in_flight.empty()) {
    state.fail_after_step = true;
    return;
  }
  std::vector<engine::request_output> events;
  end_everything(state, events);
  deliver(state, std::move(events));
}

void launch_steps(self_pointer self);

// The oldest step is back from every first-stage rank: apply it, send the next one, then hand out
// the events (the devices compute while the sinks are fed).
void complete_oldest_step(self_pointer self) {
  auto& state = self->state;
  scheduler_state::step_in_flight flight = std::move(state.in_flight.front());
  state.in_flight.pop_front();
  engine::llm_engine& engine = *state.config.engine;
  std::vector<engine::request_output> events;
  try {
    if (flight.failure.empty() && flight.samples)
      events = engine.finish_step(std::move(flight.step), *flight.samples);
    else
      events = engine.fail_step(std::move(flight.step), state.config.layout_name + " failed: " + flight.failure);
  } catch (const std::exception& error) {
    fail_everything(state, std::string("engine step failed: ") + error.what());
    publish(state);
    return;
  }
  for (engine::request_id id : state.deferred_aborts)
    for (auto& event : engine.abort(id)) events.push_back(std::move(event));
  state.deferred_aborts.clear();
  if (state.fail_after_step && state.in_flight.empty()) {
    state.fail_after_step = false;
    end_everything(state, events);
  }
  launch_steps(self);
  deliver(state, std::move(events));
  publish(state);
}

void on_answer(self_pointer self, std::uint64_t serial, std::optional<step_results> samples, std::string failure) {
  auto& state = self->state;
  const auto flight = std::find_if(state.in_flight.begin(), state.in_flight.end(),
                                   [serial](const auto& f) { return f.step.serial == serial; });
  if (flight == state.in_flight.end()) return;
  if (!failure.empty() && flight->failure.empty()) flight->failure = std::move(failure);
  if (samples) flight->samples = std::move(samples);
  --flight->num_awaited;
  // Steps come back in order from each rank; apply them in that order too.
  while (!state.in_flight.empty() && state.in_flight.front().num_awaited == 0) complete_oldest_step(self);
}

// Plans a step and sends it to every first-stage rank; answers come back as messages. With
// plan_ahead, then plans the one after it too.
void launch_steps(self_pointer self) {
  auto& state = self->state;
  const std::size_t most_in_flight = state.config.plan_ahead ? 2 : 1;
  while (state.in_flight.size() < most_in_flight && !state.is_failed && state.config.engine->has_unfinished()) {
    std::optional<engine::planned_step> planned;
    try {
      planned = state.config.engine->plan_step();
    } catch (const std::exception& error) {
      fail_everything(state, std::string("engine step failed: ") + error.what());
      return;
    }
    if (!planned) {
      if (state.in_flight.empty()) schedule_next_step(self);  // else the step out will relaunch
      return;
    }
    note_scheduled(state, std::chrono::steady_clock::now());
    const step_plan plan = make_step_plan(planned->batch, planned->copies, planned->rows, planned->fed);
    const std::uint64_t serial = planned->serial;
    const auto& ranks = state.config.first_stage;
    state.in_flight.push_back(scheduler_state::step_in_flight{std::move(*planned), ranks.size(), std::nullopt, {}});
    for (std::size_t rank = 0; rank < ranks.size(); ++rank)
      self->request(ranks[rank], caf::infinite, execute_atom::value, plan)
          .then(
              [self, rank, serial](step_results& samples) {
                on_answer(self, serial, rank == 0 ? std::optional<step_results>(std::move(samples)) : std::nullopt, {});
              },
              [self, serial](caf::error& error) { on_answer(self, serial, std::nullopt, self->system().render(error)); });
  }
}

// A submit once the pool is sized: queued, or rejected with the reason.
void accept(self_pointer self, submission& request) {
  auto& state = self->state;
  if (state.is_failed) return reject(request.sink, rejection::kind::unavailable, state.failure);
  if (state.requests.contains(request.id))
    return reject(request.sink, rejection::kind::invalid, "request id " + std::to_string(request.id) + " is in use");
  if (state.num_queued >= state.config.max_queued_requests)
    return reject(request.sink, rejection::kind::overloaded,
                  "the server's queue is full (" + std::to_string(state.config.max_queued_requests) +
                      " requests waiting); retry later");
  if (auto reason = state.config.engine->add_request(request.id, std::move(request.prompt), request.params))
    return reject(request.sink, rejection::kind::invalid, *reason);
  request.sink->on_accepted();
  state.requests.emplace(request.id, scheduler_state::tracked_request{std::move(request.sink), false});
  ++state.num_queued;
  publish(state);
  schedule_next_step(self);
}

// Every device has allocated the pool: the engine takes it, and the submits that waited go in.
void finish_sizing(self_pointer self, const engine::kv_pool_size& pool) {
  auto& state = self->state;
  state.config.engine->resize_kv_pool(pool);
  state.pool = pool;
  state.sizing.reset();
  for (caf::response_promise& promise : state.awaiting_ready) promise.deliver(pool);
  state.awaiting_ready.clear();
  std::vector<submission> held = std::move(state.held);
  state.held.clear();
  for (submission& request : held) accept(self, request);
  publish(state);
}

void on_sizing_answer(self_pointer self, std::optional<engine::memory_report> report, std::string failure) {
  auto& state = self->state;
  if (!state.sizing) return;  // failed meanwhile (a device went down)
  auto& sizing = *state.sizing;
  if (!failure.empty() && sizing.failure.empty()) sizing.failure = std::move(failure);
  if (report) sizing.reports.push_back(std::move(*report));
  if (--sizing.num_awaited > 0) return;
  if (!sizing.failure.empty()) {
    fail_everything(state, "sizing the KV cache pool failed: " + sizing.failure);
    return publish(state);
  }
  if (sizing.is_allocating) return finish_sizing(self, *state.pool);
  try {
    state.pool = engine::size_kv_pool(state.config.engine->get_scheduler().config(), sizing.reports);
  } catch (const std::exception& error) {
    fail_everything(state, error.what());
    return publish(state);
  }
  sizing.is_allocating = true;
  sizing.num_awaited = state.config.devices.size();
  for (const caf::actor& device : state.config.devices)
    self->request(device, caf::infinite, allocate_atom::value, std::int64_t{state.pool->num_blocks})
        .then([self](std::int64_t) { on_sizing_answer(self, std::nullopt, {}); },
              [self](caf::error& error) { on_sizing_answer(self, std::nullopt, error_message(self->system(), error)); });
}

// Asks every device what it can hold; the answers size the pool (on_sizing_answer).
void start_sizing(self_pointer self) {
  auto& state = self->state;
  state.sizing.emplace();
  state.sizing->num_awaited = state.config.devices.size();
  if (state.config.devices.empty())
    return finish_sizing(self, engine::size_kv_pool(state.config.engine->get_scheduler().config(), {}));
  for (const caf::actor& device : state.config.devices)
    self->request(device, caf::infinite, memory_atom::value)
        .then([self](engine::memory_report& report) { on_sizing_answer(self, std::move(report), {}); },
              [self](caf::error& error) { on_sizing_answer(self, std::nullopt, error_message(self->system(), error)); });
}

}  // namespace

caf::behavior scheduler_actor(self_pointer self, scheduler_actor_config config) {
  if (config.first_stage.empty()) throw std::invalid_argument("scheduler_actor: no device to send steps to");
  self->state.config = config;
  for (const caf::actor& device : config.devices) self->monitor(device);
  self->set_down_handler([self](const caf::down_msg& down) {
    auto& state = self->state;
    if (state.is_failed) return;
    fail_everything(state, "a device actor is down (" + self->system().render(down.reason) + ")");
    publish(state);
  });
  start_sizing(self);
  publish(self->state);
  return {
      [self](submit_atom, submission& request) {
        if (self->state.sizing) return self->state.held.push_back(std::move(request));
        accept(self, request);
      },
      [self](abort_atom, engine::request_id id) {
        auto& state = self->state;
        if (state.sizing) {  // not accepted yet: it just leaves the line
          std::erase_if(state.held, [id](const submission& request) { return request.id == id; });
          return;
        }
        if (!state.in_flight.empty()) return state.deferred_aborts.push_back(id);  // frees its blocks once a step is back
        deliver(state, state.config.engine->abort(id));
        publish(state);
      },
      [self](step_atom) {
        self->state.is_step_pending = false;
        launch_steps(self);
        publish(self->state);
      },
      [self](status_atom) { return current_status(self->state); },
      [self](ready_atom) -> caf::result<engine::kv_pool_size> {
        auto& state = self->state;
        if (state.is_failed) return caf::make_error(caf::sec::runtime_error, state.failure);
        if (state.pool && !state.sizing) return *state.pool;
        auto promise = self->make_response_promise();
        state.awaiting_ready.push_back(promise);
        return promise;
      },
  };
}

caf::actor spawn_scheduler(caf::actor_system& system, scheduler_actor_config config) {
  return system.spawn<caf::detached>(scheduler_actor, config);
}

}  // namespace glm4::actors
