// Continuous batching: which sequences run in the next step, and how many of their tokens.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "engine/block_manager.hpp"
#include "engine/scheduler_config.hpp"
#include "engine/sequence.hpp"

namespace glm4::engine {

/// One sequence's share of a step: tokens [num_cached_tokens, num_cached_tokens + num_new_tokens)
/// of it are computed; when they reach its end the step samples its next token.
struct scheduled_sequence {
  sequence* seq = nullptr;
  std::int64_t first_position = 0;
  std::int32_t num_new_tokens = 0;
  bool samples = false;
};

struct scheduler_output {
  std::vector<scheduled_sequence> seqs;  // running sequences first, then the ones admitted
  std::vector<block_copy> copies;        // copy-on-write the executor performs before the step
  std::vector<sequence*> preempted;      // sent back to waiting this step (blocks freed)
  std::int64_t num_batched_tokens = 0;
  std::int64_t num_prefix_hit_tokens = 0;  // of the sequences admitted this step
  bool is_starved = false;  // without preemption, a running sequence found no block and waits

  bool empty() const { return seqs.empty(); }
};

/// First come, first served over a waiting and a running queue (nano-vllm's shape, vLLM v1's
/// token budget). Each step:
///   1. running sequences, oldest first, take their tokens (a decode 1, a prefill in progress
///      the next chunk) while the budget lasts; when a decode finds no block, the newest running
///      sequence is preempted by recompute (blocks freed, back to the front of waiting);
///   2. unless something was preempted, waiting sequences are admitted in order while the
///      budget, max_num_seqs and the blocks (all their tokens, plus the watermark) allow; a long
///      prompt gets the budget left and finishes its prefill in later steps (chunked prefill).
/// The scheduler does not own sequences; they must outlive their time in it. Not thread-safe.
class scheduler {
 public:
  explicit scheduler(const scheduler_config& config);

  const scheduler_config& config() const { return config_; }
  const block_manager& blocks() const { return blocks_; }

  /// Why a sequence of num_prompt_tokens that may grow by max_tokens (nullopt: up to
  /// max_model_len) can never run here; nullopt when it can.
  std::optional<std::string> check_admissible(std::int64_t num_prompt_tokens,
                                              std::optional<std::int64_t> max_tokens) const;

  /// Queues seq (status waiting, holding no blocks) behind the others.
  void add(sequence& seq);
  /// Picks the next step; commits its blocks (allocate, may_append, copies). Running sequences
  /// with nothing to compute (their sample is still in flight) sit the step out. Without
  /// may_preempt (a step is in flight, so no block may be taken back) a running sequence that
  /// finds no block stops the running pass and admission (is_starved).
  scheduler_output schedule(bool may_preempt = true);
  /// Records that the step is planned: each scheduled sequence's new tokens count as cached (the
  /// devices compute them before any later step reads them).
  void postprocess(const scheduler_output& output);
  /// Appends the token a step sampled for seq (running, all tokens cached).
  void append_token(sequence& seq, token_id token);
  /// Appends a placeholder for the token a step in flight samples for seq, so that the next step
  /// can be planned now; resolve_pending_token puts the sampled id in its place.
  void append_pending_token(sequence& seq);
  void resolve_pending_token(sequence& seq, token_id token);
  /// Child (a fork_as copy of running parent, before either appends) shares parent's blocks and
  /// runs right behind the running sequences (forks may take running past max_num_seqs).
  void fork(const sequence& parent, sequence& child);
  /// seq is done: its blocks are freed and it leaves the running queue.
  void finish(sequence& seq);
  /// Removes seq from whichever queue holds it and frees its blocks at once.
  void abort(sequence& seq);
  /// abort after a failed step: the blocks it alone held leave the prefix cache too.
  void fail(sequence& seq);

  std::size_t num_waiting() const { return waiting_.size(); }
  std::size_t num_running() const { return running_.size(); }
  bool has_unfinished() const { return !waiting_.empty() || !running_.empty(); }
  const std::deque<sequence*>& waiting() const { return waiting_; }
  const std::deque<sequence*>& running() const { return running_; }

 private:
  void schedule_running(scheduler_output& output, std::int64_t& budget, bool may_preempt);
  void schedule_waiting(scheduler_output& output, std::int64_t& budget);
  bool make_room(sequence& seq, scheduler_output& output);
  void preempt(sequence& seq, scheduler_output& output);
  void release(sequence& seq);

  scheduler_config config_;
  block_manager blocks_;
  std::deque<sequence*> waiting_;
  std::deque<sequence*> running_;
};

}  // namespace glm4::engine
