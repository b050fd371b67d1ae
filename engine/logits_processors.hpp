// The transforms the sampler applies to one row of logits, each on its own so it can be tested
// against hand-computed examples. A removed token gets -inf; every transform keeps -inf as -inf.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "engine/sampling_params.hpp"

namespace glm4::engine {

/// NaN becomes -inf and +inf the largest float, so later max-subtraction never yields NaN.
void sanitize_logits(std::span<float> logits);

/// logits[id] += bias; ids outside the row are ignored (validate() rejects them earlier).
void apply_logit_bias(std::span<float> logits, const std::map<token_id, float>& bias);

/// logits[id] = -inf for each id (min_tokens keeps stop ids out until enough tokens exist).
void mask_tokens(std::span<float> logits, std::span<const token_id> ids);

/// Repetition (HF/vLLM: divide a positive logit by the penalty, multiply a negative one) on every
/// token seen in prompt or output; then frequency (times the output count) and presence (once if
/// the token is in the output) subtracted, as OpenAI defines them.
void apply_penalties(std::span<float> logits, std::span<const token_id> prompt_ids,
                     std::span<const token_id> output_ids, double repetition_penalty,
                     double presence_penalty, double frequency_penalty);

/// logits /= temperature (temperature > 0), clamped to finite.
void apply_temperature(std::span<float> logits, double temperature);

/// Keeps the k largest logits and any tied with the k-th (as vLLM's threshold mask); k = 0 is off.
void apply_top_k(std::span<float> logits, std::int32_t k);

/// Keeps the smallest set of most likely tokens whose probability sums to >= top_p: a token stays
/// when the mass of the tokens ranked above it (ties: lower id first) is < top_p.
void apply_top_p(std::span<float> logits, double top_p);

/// Drops tokens whose probability is below min_p times the most likely token's.
void apply_min_p(std::span<float> logits, double min_p);

/// The index of the largest logit, the lowest index on ties (so 0 for an all -inf row).
token_id argmax(std::span<const float> logits);

/// Inverse-CDF draw in id order: the first id whose cumulative softmax mass exceeds u * total.
/// u in [0, 1). An all -inf row returns argmax (0).
token_id sample_from(std::span<const float> logits, double u);

/// log_softmax(logits) in double; all -inf when no logit is finite (never NaN).
std::vector<double> log_softmax(std::span<const float> logits);

}  // namespace glm4::engine
