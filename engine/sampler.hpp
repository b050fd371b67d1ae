// Picks the next token of one sequence from its row of logits, and reports logprobs when asked.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/sampling_params.hpp"

namespace glm4::engine {

/// Which distribution logprobs are read from.
///   raw:       log_softmax of the model's logits, before any transform. vLLM's default, and
///              what a client comparing with other servers expects.
///   processed: log_softmax after bias, min_tokens, penalties, temperature, top-k/top-p/min-p:
///              the distribution the token was actually drawn from (greedy: before temperature).
enum class logprobs_source { raw, processed };

struct token_logprob {
  token_id id = 0;
  float logprob = 0.0f;
  bool operator==(const token_logprob&) const = default;
};

struct sample_result {
  token_id token = 0;
  std::optional<float> logprob;             // set when params.logprobs
  std::vector<token_logprob> top_logprobs;  // params.top_logprobs entries, most likely first
  bool operator==(const sample_result&) const = default;
};

/// What the sampler reads of a sequence. The draw for step i (i = num_output()) is
/// uniform_draw(seed, i): it depends on nothing else, so a seeded request gives the same tokens
/// whatever shares its batch, and recomputing after preemption redraws the same values.
/// The token lists are read only by penalties; a step sent to a device leaves them out when the
/// params have none (needs_token_history) and gives the count in num_output_tokens instead.
/// Only the repetition penalty reads the prompt, and only which ids occur in it: the engine passes
/// the prompt's distinct ids, sorted (sequence::distinct_prompt_token_ids), and none without one.
struct sequence_sampling_state {
  std::span<const token_id> prompt_token_ids;
  std::span<const token_id> output_token_ids;
  std::uint64_t seed = 0;
  std::optional<std::size_t> num_output_tokens = std::nullopt;  // none: output_token_ids.size()

  std::size_t num_output() const { return num_output_tokens.value_or(output_token_ids.size()); }
};

/// Whether sampling with `params` reads the sequence's tokens (repetition, presence or frequency penalty).
bool needs_token_history(const sampling_params& params);

/// Stateless apart from the model's EOS ids, so one instance serves every request and thread.
class sampler {
 public:
  explicit sampler(std::vector<token_id> eos_token_ids,
                   logprobs_source source = logprobs_source::raw);

  /// logits is one row of vocab_size F32 values; params passed validate(logits.size()).
  /// Order as vLLM: logit_bias, min_tokens mask, penalties, temperature, top_k, top_p, min_p,
  /// then argmax (temperature 0, lowest id on ties) or one inverse-CDF draw.
  /// When min_tokens masking leaves no finite logit, the raw argmax is taken.
  sample_result sample(std::span<const float> logits, const sampling_params& params,
                       const sequence_sampling_state& state) const;

  /// The logits the draw uses (every transform applied; greedy stops before temperature).
  std::vector<float> process(std::span<const float> logits, const sampling_params& params,
                             const sequence_sampling_state& state) const;

  const std::vector<token_id>& eos_token_ids() const { return eos_token_ids_; }
  logprobs_source source() const { return logprobs_source_; }

 private:
  std::vector<token_id> eos_token_ids_;
  logprobs_source logprobs_source_;
};

}  // namespace glm4::engine
