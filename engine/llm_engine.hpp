// The engine facade: requests in, per-choice events out; it ties the scheduler (what runs), an
// executor (runs it) and the detokenizing stage (text, stop strings) together.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/kv_pool.hpp"
#include "engine/request_output.hpp"
#include "engine/request_state.hpp"
#include "engine/scheduler.hpp"
#include "engine/step_executor.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace glm4::engine {

/// Counters since the engine started.
struct engine_stats {
  std::int64_t num_steps = 0;
  std::int64_t num_batched_tokens = 0;
  std::int64_t num_preemptions = 0;
  std::int64_t num_prefix_hit_tokens = 0;  // prompt tokens admission found in the prefix cache
};

struct engine_config {
  scheduler_config scheduler;
  std::vector<token_id> eos_token_ids;  // end a choice unless ignore_eos (the sampler's too)
  std::int64_t vocab_size = 0;          // for sampling_params::validate; 0 skips the id checks
};

/// One sampled row of a planned step: whose choice it feeds (engine bookkeeping, by id: the
/// request may end while the step is out).
struct sampled_row {
  request_id request = 0;
  sequence_id seq = 0;            // the sequence that ran (a forking choice's parent)
  std::int32_t choice_index = 0;  // a forked choice does not exist until the step has run
  std::int32_t row = 0;           // index into the executor's results
};

/// A scheduled step between plan_step and finish_step (or fail_step). batch, copies, rows and
/// fed are what an executor takes. rows view the engine's requests and sequences: valid until the
/// engine is next called (an abort or a finish_step may end them), so a step that runs later
/// runs on a copy (actors::make_step_plan).
struct planned_step {
  model::step_batch batch;
  std::vector<block_copy> copies;
  std::vector<row_sampling> rows;
  std::vector<fed_token> fed;               // empty unless planned while the step before was out
  std::uint64_t serial = 0;                 // the engine's own: steps come back in plan order
  std::vector<sequence_id> scheduled;       // the engine's own: which sequences run
  std::vector<sampled_row> sampled;         // the engine's own: whose choice each row feeds
};

// Life of a request (each of its n choices moves on its own once forked):
//
//   add_request --reject (reason)--> nothing queued
//        |
//        v          schedule: blocks       +---------+  prefill done: n > 1 forks
//   +---------+ ------------------------> | RUNNING | ----------------------------+
//   | WAITING |                           |         | <--------------------------+
//   +---------+ <------------------------ +---------+
//        |       preempt (recompute)           |  eos / stop id / stop string -> stop
//        |                                     |  max_tokens / max_model_len  -> length
//        | abort                               |  abort -> abort, executor fails -> error
//        v                                     v
//   +----------------------------------------------+
//   | FINISHED: blocks freed, final event emitted  |
//   +----------------------------------------------+
class llm_engine {
 public:
  /// The tokenizer (may be null: no text) and the executor must outlive the engine.
  llm_engine(const engine_config& config, step_executor& executor, const model::tokenizer* tokenizer);
  /// An engine whose steps someone else runs (plan_step, then finish_step or fail_step): the
  /// scheduler actor sends them to device actors. step() throws std::logic_error.
  llm_engine(const engine_config& config, const model::tokenizer* tokenizer);

  /// Replaces the KV pool (num_blocks) and max_model_len with what size_kv_pool decided from the
  /// devices' reports. Only before the first request: throws std::logic_error after.
  void resize_kv_pool(const kv_pool_size& pool);

  /// Queues a request; the reason it was refused otherwise (bad parameter, duplicate id, a
  /// prompt that can never fit the model length or the pool).
  std::optional<std::string> add_request(request_id id, std::vector<token_id> prompt, const sampling_params& params);
  /// Schedules and runs one step on the executor; the events of every choice that changed.
  std::vector<request_output> step();

  /// Schedules the next step without running it; nullopt when there is nothing to run. Steps
  /// come back through finish_step or fail_step, oldest first; meanwhile add_request and abort
  /// are allowed.
  ///
  /// Planning ahead: with one step in flight, plan_step plans the step after it, so that a
  /// device finds it waiting when it finishes the first. Each sequence the step in flight samples
  /// continues with a placeholder token (planned_step::fed: the device puts its own sample in
  /// its place); one the step ends by length sits out. nullopt when the step in flight cannot be
  /// planned past: it forks choices, a penalty reads the unknown token, or the last ahead plan
  /// left a sequence without a block (the next plan waits, so that it may preempt). A sequence
  /// that stops on eos or a stop string still runs in the step ahead; that row is dropped.
  /// Throws std::logic_error with two steps in flight.
  std::optional<planned_step> plan_step();
  /// Applies the oldest planned step's samples, one per row: the events of every choice that
  /// changed. A result count that is not the row count fails the step instead.
  std::vector<request_output> finish_step(planned_step step, std::span<const sample_result> results);
  /// Ends every request of the oldest planned step in error with `message`, freeing its blocks.
  std::vector<request_output> fail_step(planned_step step, const std::string& message);
  bool has_step_in_flight() const { return !in_flight_.empty(); }
  std::size_t num_steps_in_flight() const { return in_flight_.size(); }

  /// Ends the request in whatever state it is, freeing its blocks now (steps in flight that
  /// still write them run before any later step reuses them); its final events (one per
  /// unfinished choice), empty for an unknown or finished request.
  std::vector<request_output> abort(request_id id);

  bool has_unfinished() const { return !requests_.empty(); }
  /// The request was accepted and has a choice still running or waiting.
  bool has_request(request_id id) const { return requests_.contains(id); }
  /// The request was accepted and none of its choices has been scheduled yet (or each was
  /// preempted back to the queue).
  bool is_queued(request_id id) const;
  std::size_t num_unfinished() const { return requests_.size(); }
  const scheduler& get_scheduler() const { return scheduler_; }
  /// Tokens the last step computed.
  std::int64_t last_num_batched_tokens() const { return last_num_batched_tokens_; }
  const engine_stats& stats() const { return stats_; }

 private:
  choice_state& add_choice(request_state& request, std::int32_t index, std::unique_ptr<sequence> seq);
  /// Once per newest step in flight: gives each sequence it samples a placeholder for that
  /// token, unless the token ends it by length (fed_rows_).
  void hold_places_for_samples();
  void build_step(const scheduler_output& out, planned_step& step);
  bool can_plan_past(const planned_step& step, const scheduler_output& out) const;
  void expect_oldest(const planned_step& step, const char* what) const;
  void fork_choices(request_state& request);
  void accept_token(request_state& request, choice_state& choice, const sample_result& result,
                    std::vector<request_output>& events);
  std::optional<finish_reason> check_finish(const request_state& request, choice_state& choice,
                                            token_id token, request_output& event);
  void finish(request_state& request, choice_state& choice, finish_reason reason, request_output& event);
  void end_request(request_state& request, finish_reason reason, const std::string& message,
                   std::vector<request_output>& events);
  void fail(const std::vector<sequence_id>& scheduled, const std::string& message, std::vector<request_output>& events);
  request_output make_event(const request_state& request, const choice_state& choice) const;
  void erase_if_done(request_id id);

  engine_config config_;
  step_executor* executor_;  // null: steps run elsewhere
  std::deque<std::uint64_t> in_flight_;  // serials of the planned steps not back yet, oldest first
  std::uint64_t next_serial_ = 0;
  std::vector<sampled_row> newest_sampled_;  // of the newest step in flight
  bool can_plan_ahead_ = false;              // past the newest step in flight
  bool places_held_ = false;                 // for the newest step's samples
  // Sequences holding a placeholder: the row of the step in flight that samples it.
  std::unordered_map<sequence_id, std::int32_t> fed_rows_;
  const model::tokenizer* tokenizer_;
  scheduler scheduler_;
  std::unordered_map<request_id, std::unique_ptr<request_state>> requests_;
  std::unordered_map<sequence_id, std::pair<request_state*, choice_state*>> owners_;
  sequence_id next_sequence_id_ = 0;
  std::int64_t last_num_batched_tokens_ = 0;
  engine_stats stats_;
};

}  // namespace glm4::engine
