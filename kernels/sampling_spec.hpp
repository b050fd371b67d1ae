// Sampling on the device: what one logit row asks for, and the per-token arithmetic that the CPU
// reference (kernels/cpu/sample_rows.cpp) and the CUDA kernel (kernels/cuda/sample_rows.cu) share,
// so both round alike. The semantics are engine::sampler's (vLLM's order): engine/device_sampling
// turns a request's sampling params into these plain values. C++17, host and device.
//
// A row is processed as: sanitize (NaN -> -inf, +inf -> FLT_MAX), the token edits (logit_bias,
// min_tokens mask, penalties), then either argmax (greedy) or temperature, top-k, top-p, min-p and
// one inverse-CDF draw in id order. A row left with no finite logit takes the argmax of the
// sanitized raw logits. Ties go to the lowest id.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define GLM4_HOST_DEVICE __host__ __device__
#else
#define GLM4_HOST_DEVICE
#endif

namespace glm4::kernels {

/// One token that a row's logit_bias, min_tokens mask or penalties touch; an id appears at most
/// once per row, and ids outside the vocabulary are ignored.
struct token_edit {
  std::int32_t id = 0;
  float bias = 0.0f;               // logit_bias, added first
  std::int32_t output_count = 0;   // occurrences in the output: frequency and presence penalties
  std::uint8_t masked = 0;         // a stop or eos id before min_tokens: -inf
  std::uint8_t seen = 0;           // in the prompt or the output: the repetition penalty
};

struct row_sampling_spec {
  std::int32_t first_edit = 0;  // the row's edits are [first_edit, first_edit + num_edits) of the batch's
  std::int32_t num_edits = 0;
  std::int32_t top_k = 0;       // <= 0 or >= vocabulary: off
  std::uint8_t greedy = 0;      // argmax after the edits; temperature and the filters are then unused
  double temperature = 1.0;
  double top_p = 1.0;           // >= 1: off
  double min_p = 0.0;           // <= 0: off
  double repetition_penalty = 1.0;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  double uniform = 0.0;         // this row's draw in [0, 1)
};

/// A row whose raw logprobs are reported (backend::row_logprobs): the row of the logits, and the
/// token sampled from it.
struct logprob_request {
  std::int32_t row = 0;
  std::int32_t chosen = 0;
};

/// One of a row's most likely tokens, with its log-softmax.
struct ranked_logprob {
  std::int32_t id = 0;
  float logprob = 0.0f;
};

/// The most tokens row_logprobs ranks per row (OpenAI's top_logprobs limit).
inline constexpr std::int32_t max_ranked_logprobs = 20;

/// A token and its sanitized logit, as a ranking in progress holds it (trivial, so that it may live
/// in a kernel's shared memory).
struct ranked_candidate {
  float value;
  std::int32_t id;
};

namespace sampling_math {

/// Radix selection walks the 32-bit ordered keys 8 bits at a time, most significant first.
inline constexpr int radix_bits = 8;
inline constexpr int radix_bins = 1 << radix_bits;

GLM4_HOST_DEVICE inline float negative_infinity() { return -__builtin_huge_valf(); }

GLM4_HOST_DEVICE inline std::uint32_t float_bits(float x) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(x);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

GLM4_HOST_DEVICE inline float float_of_bits(std::uint32_t bits) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(bits);
#else
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

/// v as a float: NaN -> -inf, beyond the float range -> +-FLT_MAX or -inf (engine's finite_or_clamped).
GLM4_HOST_DEVICE inline float clamped(double v) {
  const double largest = 3.4028234663852886e38;  // FLT_MAX
  if (v != v) return negative_infinity();
  if (v > largest) return static_cast<float>(largest);
  if (v < -largest) return negative_infinity();
  return static_cast<float>(v);
}

GLM4_HOST_DEVICE inline float sanitized(float x) { return clamped(static_cast<double>(x)); }

/// Whether token a (value, id) ranks before token b among a row's most likely: larger value first,
/// then the lower id.
GLM4_HOST_DEVICE inline bool ranks_before(float a, std::int32_t a_id, float b, std::int32_t b_id) {
  return a > b || (a == b && a_id < b_id);
}

/// Offers `next` to list[0, count), the `top` best candidates so far in rank order: it goes in its
/// place when the list has room or it ranks before the last, which then drops out.
GLM4_HOST_DEVICE inline void offer_to_ranking(ranked_candidate* list, std::int32_t& count, std::int32_t top,
                                              ranked_candidate next) {
  if (count == top && (top == 0 || !ranks_before(next.value, next.id, list[count - 1].value, list[count - 1].id)))
    return;
  std::int32_t at = count < top ? count++ : top - 1;
  for (; at > 0 && ranks_before(next.value, next.id, list[at - 1].value, list[at - 1].id); --at)
    list[at] = list[at - 1];
  list[at] = next;
}

/// The log-softmax at x of a row whose maximum is `best`, with log_total = log(sum of
/// exp(x_i - best)) summed in double, as engine's log_softmax computes it: -inf throughout a row
/// with no finite value.
GLM4_HOST_DEVICE inline float logprob_of(float x, float best, double log_total) {
  if (best == negative_infinity()) return negative_infinity();
  return static_cast<float>((static_cast<double>(x) - static_cast<double>(best)) - log_total);
}

/// The edit's transforms in the sampler's order: bias, min_tokens mask, repetition, then presence
/// and frequency. Each reads only this token's value, so applying them per token is the same as
/// applying each over the whole row in turn.
GLM4_HOST_DEVICE inline float apply_edit(float x, const token_edit& edit, const row_sampling_spec& spec) {
  if (edit.bias != 0.0f) x = clamped(static_cast<double>(x) + edit.bias);
  if (edit.masked) x = negative_infinity();
  if (edit.seen && spec.repetition_penalty != 1.0) {
    const double v = x;
    x = clamped(v > 0 ? v / spec.repetition_penalty : v * spec.repetition_penalty);
  }
  if (edit.output_count > 0 && (spec.presence_penalty != 0.0 || spec.frequency_penalty != 0.0))
    // fma, as engine::sampler does: one rounding whether or not the compiler would fuse a*b+c.
    x = clamped(static_cast<double>(x) -
                fma(spec.frequency_penalty, static_cast<double>(edit.output_count), spec.presence_penalty));
  return x;
}

GLM4_HOST_DEVICE inline float apply_temperature(float x, double temperature) {
  return clamped(static_cast<double>(x) / temperature);
}

/// An unsigned key in the order of the float values, with -0 and +0 equal.
GLM4_HOST_DEVICE inline std::uint32_t ordered_key(float x) {
  const std::uint32_t bits = float_bits(x == 0.0f ? 0.0f : x);
  return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}

GLM4_HOST_DEVICE inline float value_of_key(std::uint32_t key) {
  return float_of_bits((key & 0x80000000u) != 0 ? key & 0x7fffffffu : ~key);
}

GLM4_HOST_DEVICE inline int radix_bin(std::uint32_t key, int shift) {
  return static_cast<int>((key >> shift) & (radix_bins - 1));
}

/// The unnormalised probability of a logit under the row's maximum `best`.
GLM4_HOST_DEVICE inline double weight_of(float x, float best) {
  return exp(static_cast<double>(x) - static_cast<double>(best));
}

struct picked_bin {
  int bin = 0;
  double before = 0.0;  // the count or mass of the higher bins, plus what came in
};

/// The bin, scanning from the highest, where the count of keys reaches `rank` (1-based), given
/// the keys above every bin number; rank must not exceed the total.
GLM4_HOST_DEVICE inline picked_bin pick_bin_by_count(const std::uint32_t* counts, std::uint32_t rank) {
  std::uint32_t above = 0;
  for (int bin = radix_bins - 1; bin > 0; --bin) {
    if (above + counts[bin] >= rank) return {bin, static_cast<double>(above)};
    above += counts[bin];
  }
  return {0, static_cast<double>(above)};
}

/// The bin, scanning from the highest, where the mass reaches `target` after `before`; when
/// rounding leaves every bin short, the lowest non-empty bin. Some bin must be non-empty.
GLM4_HOST_DEVICE inline picked_bin pick_bin_by_mass(const std::uint32_t* counts, const double* masses,
                                                    double before, double target) {
  picked_bin last{0, before};
  for (int bin = radix_bins - 1; bin >= 0; --bin) {
    if (counts[bin] == 0) continue;
    if (before + masses[bin] >= target) return {bin, before};
    last = {bin, before};
    before += masses[bin];
  }
  return last;
}

/// How many tokens tied at the cut value top-p keeps: the ranked running sum adds their equal
/// weights one by one (lowest id first) until it reaches target.
GLM4_HOST_DEVICE inline std::uint32_t ties_kept(double mass_above, double tie_weight, std::uint32_t num_ties,
                                                double target) {
  std::uint32_t kept = 0;
  while (kept < num_ties && mass_above < target) {
    mass_above += tie_weight;
    ++kept;
  }
  return kept;
}

}  // namespace sampling_math
}  // namespace glm4::kernels
