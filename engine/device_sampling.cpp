#include "engine/device_sampling.hpp"

#include <algorithm>

#include "engine/distinct_ids.hpp"
#include "engine/philox.hpp"

namespace glm4::engine {
namespace {

// Appends every token one row touches, one edit per id (the kernels take each id once per row), in
// id order. The few ids of the bias, the min_tokens mask and the output are gathered, sorted and
// merged; the prompt's ids, which can be thousands, come sorted and distinct from the engine and
// are merged in one pass (a list that is not is sorted here first).
void append_edits(std::vector<kernels::token_edit>& out, const sampling_params& params,
                  const sequence_sampling_state& state, std::span<const token_id> eos_token_ids) {
  std::vector<kernels::token_edit> few;
  const auto add = [&](token_id id) -> kernels::token_edit& {
    kernels::token_edit& entry = few.emplace_back();
    entry.id = id;
    return entry;
  };
  for (const auto& [id, bias] : params.logit_bias) add(id).bias = bias;
  if (static_cast<std::int64_t>(state.num_output()) < params.min_tokens) {
    for (token_id id : params.stop_token_ids) add(id).masked = 1;
    if (!params.ignore_eos)
      for (token_id id : eos_token_ids) add(id).masked = 1;
  }
  const bool repetition = params.repetition_penalty != 1.0;
  const bool counts = params.presence_penalty != 0.0 || params.frequency_penalty != 0.0;
  if (repetition || counts)
    for (token_id id : state.output_token_ids) {
      kernels::token_edit& entry = add(id);
      entry.seen = repetition ? 1 : 0;
      entry.output_count = counts ? 1 : 0;
    }
  std::sort(few.begin(), few.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::vector<kernels::token_edit> merged;
  merged.reserve(few.size());
  for (const kernels::token_edit& entry : few) {
    if (merged.empty() || merged.back().id != entry.id) {
      merged.push_back(entry);
      continue;
    }
    kernels::token_edit& same = merged.back();
    if (entry.bias != 0.0f) same.bias = entry.bias;  // logit_bias holds an id once
    same.masked |= entry.masked;
    same.seen |= entry.seen;
    same.output_count += entry.output_count;
  }
  if (!repetition) {
    out.insert(out.end(), merged.begin(), merged.end());
    return;
  }
  std::vector<token_id> storage;
  const std::span<const token_id> prompt = sorted_distinct(state.prompt_token_ids, storage);
  auto next = merged.begin();
  for (token_id id : prompt) {
    for (; next != merged.end() && next->id < id; ++next) out.push_back(*next);
    if (next != merged.end() && next->id == id) {
      out.push_back(*next++);
      out.back().seen = 1;
      continue;
    }
    kernels::token_edit& seen = out.emplace_back();
    seen.id = id;
    seen.seen = 1;
  }
  out.insert(out.end(), next, merged.end());
}

}  // namespace

device_sampling_batch make_device_sampling_batch(std::span<const row_sampling> rows,
                                                 std::span<const token_id> eos_token_ids) {
  device_sampling_batch batch;
  batch.rows.reserve(rows.size());
  std::size_t most_edits = 0;  // the prompts can make this megabytes: grow it once
  for (const row_sampling& row : rows)
    most_edits += row.state.prompt_token_ids.size() + row.state.output_token_ids.size() + row.params->logit_bias.size() +
                  row.params->stop_token_ids.size() + eos_token_ids.size();
  batch.edits.reserve(most_edits);
  for (const row_sampling& row : rows) {
    const sampling_params& params = *row.params;
    kernels::row_sampling_spec spec;
    spec.first_edit = static_cast<std::int32_t>(batch.edits.size());
    append_edits(batch.edits, params, row.state, eos_token_ids);
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
