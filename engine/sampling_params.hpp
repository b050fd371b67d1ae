// What one request asks of the sampler and of the stop checks, and the ranges each knob accepts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace glm4::engine {

using token_id = std::int32_t;

/// A rejected parameter: `param` is the request field (OpenAI's error `param`), `message` says why.
struct param_error {
  std::string param;
  std::string message;
};

/// Per-request sampling and stopping parameters. Ranges follow vLLM's SamplingParams, narrowed to
/// OpenAI's where OpenAI documents one (penalties, logit_bias, top_logprobs, n).
struct sampling_params {
  double temperature = 1.0;         // >= 0; 0 means greedy (argmax)
  std::int32_t top_k = 0;           // >= 0; 0 disables (vLLM's -1 is mapped to 0 by the HTTP layer)
  double top_p = 1.0;               // (0, 1]
  double min_p = 0.0;               // [0, 1]; 0 disables
  double repetition_penalty = 1.0;  // > 0; 1 disables; HF style, on prompt and output tokens
  double presence_penalty = 0.0;    // [-2, 2]; on output tokens
  double frequency_penalty = 0.0;   // [-2, 2]; on output tokens
  std::optional<std::uint64_t> seed;
  std::map<token_id, float> logit_bias;  // ids in [0, vocab_size), bias in [-100, 100]
  std::vector<token_id> stop_token_ids;  // ids in [0, vocab_size); also masked before min_tokens
  std::vector<std::string> stop;         // stop strings, non-empty; matched by the detokenizing stage
  std::optional<std::int32_t> max_tokens;  // >= 1; nullopt: until the model length
  std::int32_t min_tokens = 0;             // >= 0 and <= max_tokens
  bool ignore_eos = false;
  bool logprobs = false;          // return the chosen token's logprob
  std::int32_t top_logprobs = 0;  // [0, 20]; > 0 requires logprobs
  std::int32_t n = 1;             // [1, 128] completions per prompt

  bool is_greedy() const { return temperature == 0.0; }
  bool operator==(const sampling_params&) const = default;

  /// The first invalid parameter, e.g. {"top_p", "top_p must be in (0, 1], got 1.5"}.
  std::optional<param_error> validate(std::int64_t vocab_size) const;
};

inline constexpr std::int32_t max_top_logprobs = 20;
inline constexpr std::int32_t max_n = 128;

/// The seed a request samples with: its own, or one drawn from std::random_device at creation.
std::uint64_t resolve_seed(const sampling_params& params);

/// The seed of the index-th completion of an n > 1 request (vLLM: seed + index), so that the
/// completions differ yet each stays reproducible.
std::uint64_t child_seed(std::uint64_t seed, std::int32_t index);

}  // namespace glm4::engine
