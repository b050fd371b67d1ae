// Block copies through host staging, one forward, then per-row sampling on the host.
#include "engine/local_executor.hpp"

#include <stdexcept>

namespace glm4::engine {

local_executor::local_executor(model::glm4_model& model, std::int64_t num_blocks, std::int32_t block_size,
                               std::vector<token_id> eos_token_ids, logprobs_source source)
    : model_(model), cache_(model.backend(), model.config(), num_blocks, block_size),
      sampler_(std::move(eos_token_ids), source) {}

void local_executor::copy_block(const block_copy& copy) {
  // kernels::backend has no device-side copy op yet: a block is small, so it goes through the host.
  for (std::int64_t layer = 0; layer < cache_.num_layers(); ++layer)
    for (kernels::tensor* pool : {&cache_.keys(layer), &cache_.values(layer)}) {
      const kernels::tensor src = kernels::view_rows(*pool, copy.src, 1);
      kernels::tensor dst = kernels::view_rows(*pool, copy.dst, 1);
      staging_.resize(src.nbytes());
      model_.backend().download(src, staging_.data());
      model_.backend().upload(dst, staging_.data());
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
  for (const block_copy& copy : copies) copy_block(copy);
  stage_output output;
  if (!plan.has_lm_head) {
    const kernels::tensor& hidden = model_.forward(batch, cache_, hidden_in);
    if (hands_on) {
      output.hidden.resize(static_cast<std::size_t>(hidden.numel()));
      if (!output.hidden.empty()) model_.backend().download(hidden, output.hidden.data());
    }
    return output;
  }
  if (!hands_on) {
    model_.forward(batch, cache_, hidden_in);  // its share of the collectives
    logits_.clear();
    return output;
  }
  logits_ = model_.forward_logits(batch, cache_, hidden_in);
  const auto vocab = static_cast<std::size_t>(model_.config().vocab_size);
  output.samples.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::span<const float> row(logits_.data() + r * vocab, vocab);
    output.samples.push_back(sampler_.sample(row, *rows[r].params, rows[r].state));
  }
  return output;
}

}  // namespace glm4::engine
