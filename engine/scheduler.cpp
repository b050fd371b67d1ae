// The scheduling loop: running sequences first, preemption by recompute, then FCFS admission.
#include "engine/scheduler.hpp"

#include <algorithm>
#include <stdexcept>

namespace glm4::engine {
namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

bool erase_from(std::deque<sequence*>& queue, const sequence& seq) {
  const auto it = std::find(queue.begin(), queue.end(), &seq);
  if (it == queue.end()) return false;
  queue.erase(it);
  return true;
}

}  // namespace

scheduler::scheduler(const scheduler_config& config)
    : config_(config), blocks_(config.num_blocks, config.block_size, config.enable_prefix_caching) {
  if (config.max_num_batched_tokens <= 0 || config.max_num_seqs <= 0 || config.max_model_len <= 0)
    throw std::invalid_argument("scheduler needs positive max_num_batched_tokens, max_num_seqs and max_model_len");
}

std::optional<std::string> scheduler::check_admissible(std::int64_t num_prompt_tokens,
                                                       std::optional<std::int64_t> max_tokens) const {
  const std::int64_t limit = config_.max_model_len;
  const std::string prompt = "the prompt (" + std::to_string(num_prompt_tokens) + " tokens)";
  if (num_prompt_tokens <= 0) return "the prompt is empty";
  if (num_prompt_tokens >= limit)
    return prompt + " leaves no room for output under max_model_len " + std::to_string(limit);
  if (max_tokens && num_prompt_tokens + *max_tokens > limit)
    return prompt + " plus max_tokens " + std::to_string(*max_tokens) + " exceeds max_model_len " +
           std::to_string(limit);
  const std::int64_t num_usable = config_.num_blocks - config_.num_watermark_blocks();
  const std::int64_t prompt_blocks = ceil_div(num_prompt_tokens, config_.block_size);
  if (prompt_blocks > num_usable)
    return prompt + " needs " + std::to_string(prompt_blocks) + " KV blocks; admission can use " +
           std::to_string(num_usable) + " of the pool's " + std::to_string(config_.num_blocks);
  const std::int64_t num_tokens = max_tokens ? num_prompt_tokens + *max_tokens : limit;
  const std::int64_t total_blocks = ceil_div(num_tokens, config_.block_size);
  if (total_blocks > config_.num_blocks)
    return std::to_string(num_tokens) + " tokens (prompt plus output) need " + std::to_string(total_blocks) +
           " KV blocks; the pool holds " + std::to_string(config_.num_blocks);
  return std::nullopt;
}

void scheduler::add(sequence& seq) {
  if (!seq.block_table.empty()) throw std::logic_error("scheduler::add: the sequence already holds blocks");
  seq.status = sequence_status::waiting;
  waiting_.push_back(&seq);
}

scheduler_output scheduler::schedule(bool may_preempt) {
  scheduler_output output;
  std::int64_t budget = config_.max_num_batched_tokens;
  schedule_running(output, budget, may_preempt);
  if (output.preempted.empty() && !output.is_starved) schedule_waiting(output, budget);
  output.num_batched_tokens = config_.max_num_batched_tokens - budget;
  return output;
}

void scheduler::schedule_running(scheduler_output& output, std::int64_t& budget, bool may_preempt) {
  for (std::size_t i = 0; i < running_.size() && budget > 0;) {
    sequence& seq = *running_[i];
    const std::int64_t remaining = seq.num_tokens() - seq.num_cached_tokens;
    if (remaining == 0) {  // its next token is being sampled by the step in flight
      ++i;
      continue;
    }
    if (seq.awaits_slot) {
      if (!may_preempt && !blocks_.can_append(seq)) {
        output.is_starved = true;
        break;
      }
      if (!make_room(seq, output)) break;  // seq was the newest and is preempted itself
      if (auto copy = blocks_.may_append(seq)) output.copies.push_back(*copy);
      seq.awaits_slot = false;
    }
    const std::int64_t num_new = std::min(remaining, budget);
    // A block holding a placeholder gets its hash once the token is known (a later step's call).
    const std::int64_t num_known = seq.num_tokens() - (seq.has_pending_token ? 1 : 0);
    blocks_.cache_blocks(seq, std::min(seq.num_cached_tokens + num_new, num_known));
    output.seqs.push_back({&seq, seq.num_cached_tokens, static_cast<std::int32_t>(num_new), num_new == remaining});
    budget -= num_new;
    ++i;
  }
}

// decode: preempt the newest until the block fits; false when seq itself had to go.
bool scheduler::make_room(sequence& seq, scheduler_output& output) {
  while (!blocks_.can_append(seq)) {
    sequence& victim = *running_.back();
    preempt(victim, output);
    if (&victim == &seq) return false;
  }
  return true;
}

void scheduler::schedule_waiting(scheduler_output& output, std::int64_t& budget) {
  const std::int32_t watermark = config_.num_watermark_blocks();
  while (!waiting_.empty() && budget > 0 && std::ssize(running_) < config_.max_num_seqs) {
    sequence& seq = *waiting_.front();
    const std::int32_t needed = blocks_.num_blocks_to_allocate(seq);
    // With nothing running the watermark protects nobody, and a recomputed sequence may need it.
    const std::int32_t reserve = running_.empty() ? 0 : watermark;
    if (blocks_.num_free_blocks() - needed < reserve) break;
    blocks_.allocate(seq, 0);
    output.num_prefix_hit_tokens += seq.num_cached_tokens;
    const std::int64_t remaining = seq.num_tokens() - seq.num_cached_tokens;
    const std::int64_t num_new = std::min(remaining, budget);
    blocks_.cache_blocks(seq, seq.num_cached_tokens + num_new);
    output.seqs.push_back({&seq, seq.num_cached_tokens, static_cast<std::int32_t>(num_new), num_new == remaining});
    budget -= num_new;
    waiting_.pop_front();
    seq.status = sequence_status::running;
    running_.push_back(&seq);
  }
}

void scheduler::postprocess(const scheduler_output& output) {
  for (const scheduled_sequence& s : output.seqs) s.seq->num_cached_tokens += s.num_new_tokens;
}

void scheduler::append_token(sequence& seq, token_id token) {
  if (seq.num_cached_tokens != seq.num_tokens())
    throw std::logic_error("scheduler::append_token: the sequence still has tokens to compute");
  seq.append_token(token);
  seq.awaits_slot = true;
}

void scheduler::append_pending_token(sequence& seq) {
  if (seq.has_pending_token) throw std::logic_error("scheduler::append_pending_token: one placeholder is pending already");
  append_token(seq, pending_token_id);
  seq.has_pending_token = true;
}

void scheduler::resolve_pending_token(sequence& seq, token_id token) {
  if (!seq.has_pending_token) throw std::logic_error("scheduler::resolve_pending_token: no placeholder is pending");
  seq.replace_last_token(token);
  seq.has_pending_token = false;
}

void scheduler::fork(const sequence& parent, sequence& child) {
  blocks_.fork(parent, child);
  child.status = sequence_status::running;
  child.awaits_slot = false;
  running_.push_back(&child);
}

void scheduler::preempt(sequence& seq, scheduler_output& output) {
  erase_from(running_, seq);
  blocks_.deallocate(seq);
  seq.status = sequence_status::waiting;
  seq.awaits_slot = false;
  waiting_.push_front(&seq);
  output.preempted.push_back(&seq);
}

void scheduler::finish(sequence& seq) {
  erase_from(running_, seq);
  release(seq);
}

void scheduler::abort(sequence& seq) {
  if (!erase_from(waiting_, seq)) erase_from(running_, seq);
  release(seq);
}

void scheduler::fail(sequence& seq) {
  if (!erase_from(waiting_, seq)) erase_from(running_, seq);
  blocks_.discard(seq);
  seq.status = sequence_status::finished;
  seq.awaits_slot = false;
}

void scheduler::release(sequence& seq) {
  blocks_.deallocate(seq);
  seq.status = sequence_status::finished;
  seq.awaits_slot = false;
}

}  // namespace glm4::engine
