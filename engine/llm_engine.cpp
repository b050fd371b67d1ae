// One engine step: schedule, build the batch, execute (here or elsewhere), then append, detokenize
// and check stops.
#include "engine/llm_engine.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <unordered_set>

namespace glm4::engine {
namespace {

bool contains(const std::vector<token_id>& ids, token_id id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

std::string_view to_string(finish_reason reason) {
  switch (reason) {
    case finish_reason::stop: return "stop";
    case finish_reason::length: return "length";
    case finish_reason::abort: return "abort";
    case finish_reason::error: return "error";
  }
  return "error";
}

llm_engine::llm_engine(const engine_config& config, step_executor& executor, const model::tokenizer* tokenizer)
    : config_(config), executor_(&executor), tokenizer_(tokenizer), scheduler_(config.scheduler) {}

llm_engine::llm_engine(const engine_config& config, const model::tokenizer* tokenizer)
    : config_(config), executor_(nullptr), tokenizer_(tokenizer), scheduler_(config.scheduler) {}

void llm_engine::resize_kv_pool(const kv_pool_size& pool) {
  if (!requests_.empty() || !in_flight_.empty() || stats_.num_steps > 0)
    throw std::logic_error("llm_engine: the KV pool is sized before the first request");
  config_.scheduler.num_blocks = pool.num_blocks;
  config_.scheduler.max_model_len = pool.max_model_len;
  scheduler_ = scheduler(config_.scheduler);
}

std::optional<std::string> llm_engine::add_request(request_id id, std::vector<token_id> prompt,
                                                   const sampling_params& params) {
  if (requests_.contains(id)) return "request id " + std::to_string(id) + " is already in use";
  const std::int64_t vocab = config_.vocab_size > 0 ? config_.vocab_size : std::numeric_limits<std::int64_t>::max();
  if (auto error = params.validate(vocab)) return error->message;
  if (auto reason = scheduler_.check_admissible(std::ssize(prompt), params.max_tokens)) return reason;
  for (token_id t : prompt)
    if (t < 0 || t >= vocab) return "prompt token " + std::to_string(t) + " is outside the vocabulary";
  auto request = std::make_unique<request_state>();
  request->id = id;
  request->params = params;
  request->seed = resolve_seed(params);
  request->num_prompt_tokens = std::ssize(prompt);
  request->num_unfinished = params.n;
  choice_state& first = add_choice(*request, 0, std::make_unique<sequence>(next_sequence_id_++, std::move(prompt)));
  scheduler_.add(*first.seq);
  requests_.emplace(id, std::move(request));
  return std::nullopt;
}

choice_state& llm_engine::add_choice(request_state& request, std::int32_t index, std::unique_ptr<sequence> seq) {
  auto choice = std::make_unique<choice_state>();
  choice->index = index;
  choice->seed = child_seed(request.seed, index);
  choice->seq = std::move(seq);
  if (tokenizer_) choice->decoder.emplace(*tokenizer_, /*skip_special=*/true);
  choice->stops = stop_matcher(request.params.stop);
  owners_[choice->seq->id()] = {&request, choice.get()};
  request.choices.push_back(std::move(choice));
  return *request.choices.back();
}

std::vector<request_output> llm_engine::step() {
  if (!executor_) throw std::logic_error("llm_engine: this engine has no executor; run plan_step/finish_step");
  if (!in_flight_.empty()) throw std::logic_error("llm_engine: step() while planned steps are out; finish them first");
  std::optional<planned_step> planned = plan_step();
  if (!planned) return {};
  std::vector<sample_result> results;
  try {
    results = executor_->execute(planned->batch, planned->copies, planned->rows);
  } catch (const std::exception& e) {
    return fail_step(std::move(*planned), e.what());
  }
  return finish_step(std::move(*planned), results);
}

std::optional<planned_step> llm_engine::plan_step() {
  if (in_flight_.size() >= 2) throw std::logic_error("llm_engine: plan_step with two steps in flight");
  const bool ahead = !in_flight_.empty();
  if (ahead && !can_plan_ahead_) return std::nullopt;
  if (ahead) hold_places_for_samples();
  const scheduler_output out = scheduler_.schedule(/*may_preempt=*/!ahead);
  last_num_batched_tokens_ = out.num_batched_tokens;
  stats_.num_preemptions += std::ssize(out.preempted);
  stats_.num_prefix_hit_tokens += out.num_prefix_hit_tokens;
  if (out.empty()) return std::nullopt;
  scheduler_.postprocess(out);
  ++stats_.num_steps;
  stats_.num_batched_tokens += out.num_batched_tokens;
  planned_step step;
  step.serial = next_serial_++;
  step.batch.block_size = scheduler_.config().block_size;
  step.copies = out.copies;
  build_step(out, step);
  can_plan_ahead_ = can_plan_past(step, out);
  newest_sampled_ = step.sampled;
  places_held_ = false;
  in_flight_.push_back(step.serial);
  return step;
}

void llm_engine::hold_places_for_samples() {
  if (places_held_) return;  // an earlier ahead plan found nothing to run; its placeholders stand
  places_held_ = true;
  for (const sampled_row& s : newest_sampled_) {
    const auto owner = owners_.find(s.seq);
    if (owner == owners_.end()) continue;  // aborted since
    const request_state& request = *owner->second.first;
    sequence& seq = *owner->second.second->seq;
    // The sampled token ends the sequence by length: it does not run again.
    const bool reaches_max_tokens = request.params.max_tokens && seq.num_output_tokens() + 1 >= *request.params.max_tokens;
    if (reaches_max_tokens || seq.num_tokens() + 1 >= scheduler_.config().max_model_len) continue;
    scheduler_.append_pending_token(seq);
    fed_rows_.emplace(s.seq, s.row);
  }
}

bool llm_engine::can_plan_past(const planned_step& step, const scheduler_output& out) const {
  if (out.is_starved) return false;
  for (const sampled_row& s : step.sampled) {
    const request_state& request = *owners_.at(s.seq).first;
    if (request.params.n > 1 && !request.forked) return false;  // the choices are forked when the step is back
    if (needs_token_history(request.params)) return false;      // the plan would carry a placeholder
  }
  return true;
}

void llm_engine::expect_oldest(const planned_step& step, const char* what) const {
  if (in_flight_.empty() || in_flight_.front() != step.serial)
    throw std::logic_error(std::string("llm_engine: ") + what + " takes the oldest step in flight first");
}

std::vector<request_output> llm_engine::finish_step(planned_step step, std::span<const sample_result> results) {
  expect_oldest(step, "finish_step");
  if (results.size() != step.rows.size())
    return fail_step(std::move(step), "the device returned " + std::to_string(results.size()) + " samples for " +
                                          std::to_string(step.rows.size()) + " rows");
  in_flight_.pop_front();
  std::vector<request_output> events;
  std::unordered_set<request_id> touched;
  for (const sampled_row& s : step.sampled) {
    const auto found = requests_.find(s.request);
    if (found == requests_.end()) continue;  // ended while the step was out
    request_state& request = *found->second;
    if (s.choice_index == 0 && request.params.n > 1 && !request.forked) fork_choices(request);
    choice_state& choice = *request.choices.at(static_cast<std::size_t>(s.choice_index));
    // A choice that stopped in the step before still ran in this one (planned ahead): its row is dropped.
    if (choice.finished) continue;
    touched.insert(request.id);
    accept_token(request, choice, results[static_cast<std::size_t>(s.row)], events);
  }
  for (request_id id : touched) erase_if_done(id);
  return events;
}

std::vector<request_output> llm_engine::fail_step(planned_step step, const std::string& message) {
  expect_oldest(step, "fail_step");
  in_flight_.pop_front();
  std::vector<request_output> events;
  fail(step.scheduled, message, events);
  return events;
}

void llm_engine::build_step(const scheduler_output& out, planned_step& step) {
  model::step_batch& batch = step.batch;
  for (const scheduled_sequence& s : out.seqs) {
    const sequence& seq = *s.seq;
    step.scheduled.push_back(seq.id());
    const auto tokens = seq.token_ids().subspan(static_cast<std::size_t>(s.first_position),
                                                static_cast<std::size_t>(s.num_new_tokens));
    model::add_sequence(batch, tokens, static_cast<std::int32_t>(s.first_position), seq.block_table,
                        s.samples ? model::logit_rows::last : model::logit_rows::none);
    if (seq.has_pending_token)  // the placeholder is the last token, and so this step's last of seq
      step.fed.push_back({static_cast<std::int32_t>(batch.num_tokens() - 1), fed_rows_.at(seq.id())});
    if (!s.samples) continue;
    auto [request, choice] = owners_.at(seq.id());
    const std::int32_t position_row = batch.logit_rows.back();
    // A forking request draws every choice's first token from the same row, each with its seed.
    const std::int32_t num_draws = request->params.n > 1 && !request->forked ? request->params.n : 1;
    for (std::int32_t i = 0; i < num_draws; ++i) {
      if (i > 0) batch.logit_rows.push_back(position_row);
      const std::uint64_t seed = i == 0 ? choice->seed : child_seed(request->seed, i);
      // Only a repetition penalty reads the prompt, and only which ids occur in it.
      const std::span<const token_id> prompt =
          request->params.repetition_penalty != 1.0 ? seq.distinct_prompt_token_ids() : std::span<const token_id>{};
      step.rows.push_back({&request->params, {prompt, seq.output_token_ids(), seed}});
      step.sampled.push_back(
          {request->id, seq.id(), i == 0 ? choice->index : i, static_cast<std::int32_t>(step.rows.size() - 1)});
    }
  }
}

void llm_engine::fork_choices(request_state& request) {
  const sequence& parent = *request.choices.front()->seq;
  for (std::int32_t i = 1; i < request.params.n; ++i) {
    choice_state& child = add_choice(request, i, std::make_unique<sequence>(parent.fork_as(next_sequence_id_++)));
    scheduler_.fork(parent, *child.seq);
  }
  request.forked = true;
}

request_output llm_engine::make_event(const request_state& request, const choice_state& choice) const {
  request_output event;
  event.request = request.id;
  event.index = choice.index;
  event.num_prompt_tokens = request.num_prompt_tokens;
  event.num_output_tokens = choice.seq->num_output_tokens();
  return event;
}

void llm_engine::accept_token(request_state& request, choice_state& choice, const sample_result& result,
                              std::vector<request_output>& events) {
  if (choice.seq->has_pending_token) {
    scheduler_.resolve_pending_token(*choice.seq, result.token);
    fed_rows_.erase(choice.seq->id());
  } else {
    scheduler_.append_token(*choice.seq, result.token);
  }
  request_output event = make_event(request, choice);
  event.tokens.push_back(result);
  if (auto reason = check_finish(request, choice, result.token, event)) finish(request, choice, *reason, event);
  events.push_back(std::move(event));
}

std::optional<finish_reason> llm_engine::check_finish(const request_state& request, choice_state& choice,
                                                      token_id token, request_output& event) {
  const sampling_params& params = request.params;
  const sequence& seq = *choice.seq;
  const bool may_stop = seq.num_output_tokens() >= params.min_tokens;
  const bool is_eos = !params.ignore_eos && contains(config_.eos_token_ids, token);
  if (may_stop && (is_eos || contains(params.stop_token_ids, token))) return finish_reason::stop;
  if (choice.decoder) {
    std::string delta = choice.decoder->push(token);
    if (may_stop && !params.stop.empty()) {
      auto matched = choice.stops.push(delta);
      event.text += matched.text;
      if (matched.stopped) {
        event.message = choice.stops.matched();
        return finish_reason::stop;
      }
    } else {
      event.text += delta;
    }
  }
  if (params.max_tokens && seq.num_output_tokens() >= *params.max_tokens) return finish_reason::length;
  if (seq.num_tokens() >= scheduler_.config().max_model_len) return finish_reason::length;
  return std::nullopt;
}

void llm_engine::finish(request_state& request, choice_state& choice, finish_reason reason, request_output& event) {
  const bool releases_text = reason == finish_reason::stop || reason == finish_reason::length;
  if (releases_text && choice.decoder && !choice.stops.stopped()) {
    event.text += choice.stops.push(choice.decoder->flush()).text;
    event.text += choice.stops.flush();
  }
  if (reason == finish_reason::stop || reason == finish_reason::length)
    scheduler_.finish(*choice.seq);
  else if (reason == finish_reason::abort)
    scheduler_.abort(*choice.seq);
  else
    scheduler_.fail(*choice.seq);
  owners_.erase(choice.seq->id());
  fed_rows_.erase(choice.seq->id());
  choice.finished = true;
  --request.num_unfinished;
  event.finish = reason;
  event.num_output_tokens = choice.seq->num_output_tokens();
}

std::vector<request_output> llm_engine::abort(request_id id) {
  std::vector<request_output> events;
  const auto found = requests_.find(id);
  if (found == requests_.end()) return events;
  end_request(*found->second, finish_reason::abort, "", events);
  requests_.erase(found);
  return events;
}

void llm_engine::end_request(request_state& request, finish_reason reason, const std::string& message,
                             std::vector<request_output>& events) {
  for (auto& choice : request.choices) {
    if (choice->finished) continue;
    request_output event = make_event(request, *choice);
    event.message = message;
    finish(request, *choice, reason, event);
    events.push_back(std::move(event));
  }
  // Choices never forked still get their final event.
  for (std::int32_t i = std::ssize(request.choices); !request.forked && i < request.params.n; ++i) {
    request_output event;
    event.request = request.id;
    event.index = i;
    event.num_prompt_tokens = request.num_prompt_tokens;
    event.finish = reason;
    event.message = message;
    events.push_back(std::move(event));
  }
  request.num_unfinished = 0;
}

void llm_engine::fail(const std::vector<sequence_id>& scheduled, const std::string& message,
                      std::vector<request_output>& events) {
  std::vector<request_id> failed;
  for (sequence_id seq : scheduled) {
    const auto owner = owners_.find(seq);
    if (owner == owners_.end()) continue;
    request_state& request = *owner->second.first;
    end_request(request, finish_reason::error, message, events);
    failed.push_back(request.id);
  }
  for (request_id id : failed) requests_.erase(id);
}

bool llm_engine::is_queued(request_id id) const {
  const auto found = requests_.find(id);
  if (found == requests_.end()) return false;
  for (const auto& choice : found->second->choices)
    if (!choice->finished && choice->seq->status != sequence_status::waiting) return false;
  return true;
}

void llm_engine::erase_if_done(request_id id) {
  const auto found = requests_.find(id);
  if (found != requests_.end() && found->second->num_unfinished == 0) requests_.erase(found);
}

}  // namespace glm4::engine
