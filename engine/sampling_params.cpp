// Range checks of sampling_params and the per-request seed.
#include "engine/sampling_params.hpp"

#include <cmath>
#include <random>
#include <sstream>

namespace glm4::engine {
namespace {

template <class T>
param_error make_error(const char* param, const char* range, const T& got) {
  std::ostringstream out;
  out << param << " must be " << range << ", got " << got;
  return {param, out.str()};
}

// Written so that NaN fails every range test.
bool in_closed(double x, double lo, double hi) { return x >= lo && x <= hi; }

std::optional<param_error> check_token(const char* param, token_id id, std::int64_t vocab_size) {
  if (id >= 0 && id < vocab_size) return std::nullopt;
  std::ostringstream out;
  out << param << " must hold token ids in [0, " << vocab_size << "), got " << id;
  return param_error{param, out.str()};
}

}  // namespace

std::optional<param_error> sampling_params::validate(std::int64_t vocab_size) const {
  if (!(temperature >= 0.0 && std::isfinite(temperature)))
    return make_error("temperature", ">= 0 and finite", temperature);
  if (top_k < 0) return make_error("top_k", ">= 0 (0 disables it)", top_k);
  if (!(top_p > 0.0 && top_p <= 1.0)) return make_error("top_p", "in (0, 1]", top_p);
  if (!in_closed(min_p, 0.0, 1.0)) return make_error("min_p", "in [0, 1]", min_p);
  if (!(repetition_penalty > 0.0 && std::isfinite(repetition_penalty)))
    return make_error("repetition_penalty", "> 0 and finite", repetition_penalty);
  if (!in_closed(presence_penalty, -2.0, 2.0))
    return make_error("presence_penalty", "in [-2, 2]", presence_penalty);
  if (!in_closed(frequency_penalty, -2.0, 2.0))
    return make_error("frequency_penalty", "in [-2, 2]", frequency_penalty);
  for (const auto& [id, bias] : logit_bias) {
    if (auto error = check_token("logit_bias", id, vocab_size)) return error;
    if (!in_closed(bias, -100.0, 100.0)) return make_error("logit_bias", "values in [-100, 100]", bias);
  }
  for (token_id id : stop_token_ids)
    if (auto error = check_token("stop_token_ids", id, vocab_size)) return error;
  for (const auto& text : stop)
    if (text.empty()) return param_error{"stop", "stop must not contain an empty string"};
  if (max_tokens && *max_tokens < 1) return make_error("max_tokens", ">= 1", *max_tokens);
  if (min_tokens < 0) return make_error("min_tokens", ">= 0", min_tokens);
  if (max_tokens && min_tokens > *max_tokens) {
    std::ostringstream out;
    out << "min_tokens must be <= max_tokens (" << *max_tokens << "), got " << min_tokens;
    return param_error{"min_tokens", out.str()};
  }
  if (top_logprobs < 0 || top_logprobs > max_top_logprobs)
    return make_error("top_logprobs", "in [0, 20]", top_logprobs);
  if (top_logprobs > 0 && !logprobs)
    return param_error{"top_logprobs", "top_logprobs requires logprobs to be true"};
  if (n < 1 || n > max_n) return make_error("n", "in [1, 128]", n);
  return std::nullopt;
}

std::uint64_t resolve_seed(const sampling_params& params) {
  if (params.seed) return *params.seed;
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

std::uint64_t child_seed(std::uint64_t seed, std::int32_t index) {
  return seed + static_cast<std::uint64_t>(index);
}

}  // namespace glm4::engine
