// The sampling pipeline over logits_processors, the seeded draw and logprob reporting.
#include "engine/sampler.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

#include "engine/logits_processors.hpp"
#include "engine/philox.hpp"

namespace glm4::engine {
namespace {

std::vector<float> sanitized_copy(std::span<const float> logits) {
  std::vector<float> row(logits.begin(), logits.end());
  sanitize_logits(row);
  return row;
}

// Bias, min_tokens and penalties: the transforms that change which token is most likely.
void apply_shaping(std::span<float> row, const sampling_params& params,
                   const sequence_sampling_state& state, std::span<const token_id> eos_ids) {
  apply_logit_bias(row, params.logit_bias);
  if (static_cast<std::int64_t>(state.num_output()) < params.min_tokens) {
    mask_tokens(row, params.stop_token_ids);
    if (!params.ignore_eos) mask_tokens(row, eos_ids);
  }
  apply_penalties(row, state.prompt_token_ids, state.output_token_ids, params.repetition_penalty,
                  params.presence_penalty, params.frequency_penalty);
}

bool has_finite(std::span<const float> row) {
  constexpr float negative_infinity = -std::numeric_limits<float>::infinity();
  return std::any_of(row.begin(), row.end(), [](float x) { return x > negative_infinity; });
}

void fill_logprobs(sample_result& result, const std::vector<double>& logprobs,
                   std::int32_t num_top) {
  result.logprob = static_cast<float>(logprobs[static_cast<std::size_t>(result.token)]);
  const auto num_kept = std::min<std::size_t>(static_cast<std::size_t>(num_top), logprobs.size());
  if (num_kept == 0) return;
  std::vector<token_id> ids(logprobs.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(num_kept), ids.end(),
                    [&](token_id a, token_id b) {
                      const double la = logprobs[static_cast<std::size_t>(a)];
                      const double lb = logprobs[static_cast<std::size_t>(b)];
                      return la != lb ? la > lb : a < b;
                    });
  for (std::size_t r = 0; r < num_kept; ++r)
    result.top_logprobs.push_back(
        {ids[r], static_cast<float>(logprobs[static_cast<std::size_t>(ids[r])])});
}

}  // namespace

bool needs_token_history(const sampling_params& params) {
  return params.repetition_penalty != 1.0 || params.presence_penalty != 0.0 || params.frequency_penalty != 0.0;
}

sampler::sampler(std::vector<token_id> eos_token_ids, logprobs_source source)
    : eos_token_ids_(std::move(eos_token_ids)), logprobs_source_(source) {}

std::vector<float> sampler::process(std::span<const float> logits, const sampling_params& params,
                                    const sequence_sampling_state& state) const {
  std::vector<float> row = sanitized_copy(logits);
  apply_shaping(row, params, state, eos_token_ids_);
  if (params.is_greedy()) return row;
  apply_temperature(row, params.temperature);
  apply_top_k(row, params.top_k);
  apply_top_p(row, params.top_p);
  apply_min_p(row, params.min_p);
  return row;
}

sample_result sampler::sample(std::span<const float> logits, const sampling_params& params,
                              const sequence_sampling_state& state) const {
  const std::vector<float> row = process(logits, params, state);
  sample_result result;
  if (!has_finite(row)) {
    result.token = argmax(sanitized_copy(logits));
  } else if (params.is_greedy()) {
    result.token = argmax(row);
  } else {
    const auto step = static_cast<std::uint64_t>(state.num_output());
    result.token = sample_from(row, uniform_draw(state.seed, step));
  }
  if (params.logprobs) {
    const auto source = logprobs_source_ == logprobs_source::raw
                            ? log_softmax(sanitized_copy(logits))
                            : log_softmax(row);
    fill_logprobs(result, source, params.top_logprobs);
  }
  return result;
}

}  // namespace glm4::engine
