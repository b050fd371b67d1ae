#include "engine/device_sampling.hpp"

#include <algorithm>
#include <map>

#include "engine/philox.hpp"

namespace glm4::engine {
namespace {

// Every token one row touches, merged by id (the kernels take each id once per row).
std::map<token_id, kernels::token_edit> edits_of(const sampling_params& params, const sequence_sampling_state& state,
                                                 std::span<const token_id> eos_token_ids) {
  std::map<token_id, kernels::token_edit> edits;
  const auto edit = [&](token_id id) -> kernels::token_edit& {
    kernels::token_edit& entry = edits[id];
    entry.id = id;
    return entry;
  };
  for (const auto& [id, bias] : params.logit_bias) edit(id).bias = bias;
  if (static_cast<std::int64_t>(state.num_output()) < params.min_tokens) {
    for (token_id id : params.stop_token_ids) edit(id).masked = 1;
    if (!params.ignore_eos)
      for (token_id id : eos_token_ids) edit(id).masked = 1;
  }
  if (params.repetition_penalty != 1.0) {
    for (token_id id : state.prompt_token_ids) edit(id).seen = 1;
    for (token_id id : state.output_token_ids) edit(id).seen = 1;
  }
  if (params.presence_penalty != 0.0 || params.frequency_penalty != 0.0)
    for (token_id id : state.output_token_ids) ++edit(id).output_count;
  return edits;
}

}  // namespace

device_sampling_batch make_device_sampling_batch(std::span<const row_sampling> rows,
                                                 std::span<const token_id> eos_token_ids) {
  device_sampling_batch batch;
  batch.rows.reserve(rows.size());
  for (const row_sampling& row : rows) {
    const sampling_params& params = *row.params;
    kernels::row_sampling_spec spec;
    spec.first_edit = static_cast<std::int32_t>(batch.edits.size());
    for (const auto& entry : edits_of(params, row.state, eos_token_ids)) batch.edits.push_back(entry.second);
    spec.num_edits = static_cast<std::int32_t>(batch.edits.size()) - spec.first_edit;
    spec.greedy = params.is_greedy() ? 1 : 0;
    spec.top_k = params.top_k;
    spec.temperature = params.temperature;
    spec.top_p = params.top_p;
    spec.min_p = params.min_p;
    spec.repetition_penalty = params.repetition_penalty;
    spec.presence_penalty = params.presence_penalty;
    spec.frequency_penalty = params.frequency_penalty;
    spec.uniform = uniform_draw(row.state.seed, static_cast<std::uint64_t>(row.state.num_output()));
    batch.rows.push_back(spec);
  }
  return batch;
}

}  // namespace glm4::engine
