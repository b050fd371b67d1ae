// Block copies through host staging, one forward, then per-row sampling on the host.
#include "engine/local_executor.hpp"

#include <algorithm>
#include <stdexcept>

#include "engine/device_sampling.hpp"

namespace glm4::engine {

local_executor::local_executor(model::glm4_model& model, std::int64_t num_blocks, std::int32_t block_size,
                               std::vector<token_id> eos_token_ids, logprobs_source source)
    : model_(model), block_size_(block_size),
      kv_budget_bytes_(static_cast<std::uint64_t>(num_blocks) *
                       model::kv_cache::bytes_per_block(model.config(), block_size, model.kv_cache_dtype())),
      cache_(std::in_place, model.backend(), model.config(), num_blocks, block_size, model.kv_cache_dtype()),
      sampler_(std::move(eos_token_ids), source) {}

local_executor::local_executor(model::glm4_model& model, kv_budget budget, std::int32_t block_size,
                               std::vector<token_id> eos_token_ids, logprobs_source source)
    : model_(model), block_size_(block_size), kv_budget_bytes_(budget.bytes), sampler_(std::move(eos_token_ids), source) {}

void local_executor::fill_fed_tokens(model::step_batch& batch, std::span<const fed_token> fed,
                                     std::span<const sample_result> previous) {
  kernels::comm::communicator* group = model_.tensor_parallel();
  if (!group || group->size() == 1) return step_executor::fill_fed_tokens(batch, fed, previous);
  std::vector<std::int32_t> ids(fed.size(), 0);
  if (group->rank() == 0) {
    step_executor::fill_fed_tokens(batch, fed, previous);
    for (std::size_t i = 0; i < fed.size(); ++i) ids[i] = batch.token_ids.at(static_cast<std::size_t>(fed[i].token_index));
  }
  group->broadcast_host(ids);
  for (std::size_t i = 0; i < fed.size(); ++i) batch.token_ids.at(static_cast<std::size_t>(fed[i].token_index)) = ids[i];
}

memory_report local_executor::memory() const {
  const model::shard_plan& plan = model_.plan();
  const std::string rank = plan.tp_size == 1 && plan.has_embedding && plan.has_lm_head
                               ? ""
                               : "layers " + std::to_string(plan.layers.begin) + ".." + std::to_string(plan.layers.end) +
                                     " rank " + std::to_string(plan.tp_rank) + " on ";
  return {rank + model_.backend().name(), kv_budget_bytes_,
          model::kv_cache::bytes_per_block(model_.config(), block_size_, model_.kv_cache_dtype())};
}

void local_executor::allocate_kv_pool(std::int64_t num_blocks) {
  if (cache_ && cache_->num_blocks() == num_blocks) return;
  cache_.reset();  // the old pool goes before the new one is allocated
  cache_.emplace(model_.backend(), model_.config(), num_blocks, block_size_, model_.kv_cache_dtype());
}

std::vector<std::uint8_t> local_executor::make_group_id() {
  if (model_.plan().tp_size == 1) return step_executor::make_group_id();
  return model_.backend().make_group_id();
}

void local_executor::join_group(const kernels::comm::group_ticket& ticket) {
  if (model_.plan().tp_size == 1) return step_executor::join_group(ticket);
  model_.join_tensor_parallel(model_.backend().join_group(ticket));
}

model::kv_cache& local_executor::cache() {
  if (!cache_) throw std::logic_error("local_executor: no KV pool yet (allocate_kv_pool comes before the first step)");
  return *cache_;
}

void local_executor::copy_block(const block_copy& copy) {
  // On the device, queued with the step's ops: nothing waits for it.
  model::kv_cache& pool_of_layers = cache();
  for (std::int64_t layer = 0; layer < pool_of_layers.num_layers(); ++layer)
    for (kernels::tensor* pool : {&pool_of_layers.keys(layer), &pool_of_layers.values(layer)}) {
      kernels::tensor dst = kernels::view_rows(*pool, copy.dst, 1);
      model_.backend().copy(dst, kernels::view_rows(*pool, copy.src, 1));
    }
}

std::vector<sample_result> local_executor::execute(const model::step_batch& batch, std::span<const block_copy> copies,
                                                   std::span<const row_sampling> rows) {
  const model::shard_plan& plan = model_.plan();
  if (!plan.has_embedding || !plan.has_lm_head || plan.tp_size != 1)
    throw std::logic_error("local_executor: execute() runs a whole model; a rank of a sharded layout runs execute_stage()");
  return execute_stage(batch, copies, rows, {}).samples;
}

stage_output local_executor::execute_stage(const model::step_batch& batch, std::span<const block_copy> copies,
                                           std::span<const row_sampling> rows, std::span<const float> hidden_in) {
  const model::shard_plan& plan = model_.plan();
  const bool hands_on = plan.tp_rank == 0;
  if (plan.has_lm_head && hands_on && rows.size() != batch.logit_rows.size())
    throw std::invalid_argument("local_executor: one sampling input per logit row is needed");
  model::kv_cache& kv = cache();
  for (const block_copy& copy : copies) copy_block(copy);
  stage_output output;
  if (!plan.has_lm_head) {
    const kernels::tensor& hidden = model_.forward(batch, kv, hidden_in);
    if (hands_on) {
      output.hidden.resize(static_cast<std::size_t>(hidden.numel()));
      if (!output.hidden.empty()) model_.backend().download(hidden, output.hidden.data());
    }
    return output;
  }
  if (!hands_on) {
    model_.forward(batch, kv, hidden_in);  // its share of the collectives
    logits_.clear();
    return output;
  }
  if (sampling_site_ == sampling_site::device) {
    output.samples = sample_on_device(model_.forward(batch, kv, hidden_in), rows);
    logits_.clear();
    return output;
  }
  logits_ = model_.forward_logits(batch, kv, hidden_in);
  const auto vocab = static_cast<std::size_t>(model_.config().vocab_size);
  output.samples.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::span<const float> row(logits_.data() + r * vocab, vocab);
    output.samples.push_back(sampler_.sample(row, *rows[r].params, rows[r].state));
  }
  return output;
}

std::vector<sample_result> local_executor::sample_on_device(const kernels::tensor& logits,
                                                             std::span<const row_sampling> rows) {
  const device_sampling_batch sampling = make_device_sampling_batch(rows, sampler_.eos_token_ids());
  std::vector<std::int32_t> ids(rows.size());
  model_.backend().sample_rows(ids, logits, sampling.rows, sampling.edits);
  std::vector<sample_result> samples(rows.size());
  std::vector<kernels::logprob_request> raw_logprobs;
  std::vector<float> row_logits;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    samples[r].token = ids[r];
    if (!rows[r].params->logprobs) continue;
    if (sampler_.source() == logprobs_source::raw) {
      raw_logprobs.push_back({static_cast<std::int32_t>(r), ids[r]});
      continue;
    }
    // Processed logprobs need the sampler's transforms of this row: it goes to the host sampler,
    // the only logits that leave the device.
    row_logits.resize(static_cast<std::size_t>(logits.dim(1)));
    model_.backend().download(kernels::view_rows(logits, static_cast<std::int64_t>(r), 1), row_logits.data());
    samples[r] = sampler_.sample(row_logits, *rows[r].params, rows[r].state);
  }
  if (!raw_logprobs.empty()) fill_raw_logprobs(logits, raw_logprobs, rows, samples);
  return samples;
}

void local_executor::fill_raw_logprobs(const kernels::tensor& logits, std::span<const kernels::logprob_request> requests,
                                       std::span<const row_sampling> rows, std::vector<sample_result>& samples) {
  std::int32_t top = 0;
  for (const kernels::logprob_request& request : requests)
    top = std::max(top, rows[static_cast<std::size_t>(request.row)].params->top_logprobs);
  top = static_cast<std::int32_t>(std::min<std::int64_t>(top, logits.dim(1)));
  std::vector<float> chosen(requests.size());
  std::vector<kernels::ranked_logprob> ranked(requests.size() * static_cast<std::size_t>(top));
  model_.backend().row_logprobs(logits, requests, top, chosen, ranked);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto r = static_cast<std::size_t>(requests[i].row);
    samples[r].logprob = chosen[i];
    const std::int32_t wanted = std::min(rows[r].params->top_logprobs, top);
    for (std::int32_t j = 0; j < wanted; ++j) {
      const kernels::ranked_logprob& entry = ranked[i * static_cast<std::size_t>(top) + static_cast<std::size_t>(j)];
      samples[r].top_logprobs.push_back({entry.id, entry.logprob});
    }
  }
}

}  // namespace glm4::engine
