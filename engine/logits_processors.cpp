// Logit transforms: bias, masking, penalties, temperature, top-k, top-p, min-p, and draws.
#include "engine/logits_processors.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <unordered_map>

#include "engine/distinct_ids.hpp"

namespace glm4::engine {
namespace {

constexpr float negative_infinity = -std::numeric_limits<float>::infinity();

bool in_row(std::span<const float> logits, token_id id) {
  return id >= 0 && static_cast<std::size_t>(id) < logits.size();
}

float finite_or_clamped(double value) {
  constexpr double largest = std::numeric_limits<float>::max();
  if (std::isnan(value)) return negative_infinity;
  if (value > largest) return static_cast<float>(largest);
  if (value < -largest) return negative_infinity;  // converting it would be undefined behaviour
  return static_cast<float>(value);
}

float row_max(std::span<const float> logits) {
  float best = negative_infinity;
  for (float x : logits) best = std::max(best, x);
  return best;
}

// A finite token as top-p ranks it. Ascending rank is logit descending, then id ascending (one
// integer compare); weight is its unnormalised probability exp(logit - max).
struct ranked_token {
  std::uint64_t rank;
  double weight;
};

std::uint64_t rank_key(float logit, token_id id) {
  // -0 and +0 compare equal, so they must tie (and fall back to the id) here too.
  const auto bits = std::bit_cast<std::uint32_t>(logit == 0.0f ? 0.0f : logit);
  // Flipping maps float order onto unsigned order; inverting it makes larger logits rank first.
  const std::uint32_t ascending = (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
  return (std::uint64_t{~ascending} << 32) | static_cast<std::uint32_t>(id);
}

token_id id_of(const ranked_token& token) {
  return static_cast<token_id>(static_cast<std::uint32_t>(token.rank));
}

bool ranks_before(const ranked_token& a, const ranked_token& b) { return a.rank < b.rank; }

// The definition itself: sort everything and add masses in rank order until they reach target.
std::size_t top_p_cut_by_sort(std::span<ranked_token> tokens, double target) {
  std::sort(tokens.begin(), tokens.end(), ranks_before);
  double mass_above = 0.0;
  std::size_t r = 0;
  for (; r < tokens.size() && mass_above < target; ++r) mass_above += tokens[r].weight;
  return r;
}

// The same cut in expected O(n): quickselect on rank, descending only into the side holding the
// first prefix whose mass reaches target, and sorting only the last few tokens. On return the
// kept tokens are tokens[0, cut). Masses are summed in another order than the ranked running
// sum, so a comparison within margin of target could round the other way: nullopt then.
std::optional<std::size_t> find_top_p_cut(std::span<ranked_token> tokens, double target,
                                           double margin, bool all_reach_target) {
  if (!(target > 0.0)) return 0;  // top_p <= 0: no prefix is below target, so none is kept
  // Invariants: [0, lo) ranks before [lo, hi), which ranks before [hi, n); the mass of [0, lo)
  // is mass_before < target; when hi_reaches_target, the mass of [0, hi) reaches target.
  std::size_t lo = 0;
  std::size_t hi = tokens.size();
  double mass_before = 0.0;
  bool hi_reaches_target = all_reach_target;
  std::uint64_t state = 0x9e3779b97f4a7c15ull;  // fixed seed: pivots need only not be adversarial
  const auto random_in = [&](std::size_t begin, std::size_t end) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return begin + static_cast<std::size_t>((state >> 33) % (end - begin));
  };
  constexpr std::size_t sort_below = 32;
  while (hi - lo > sort_below) {
    std::array<std::size_t, 3> picks = {random_in(lo, hi), random_in(lo, hi), random_in(lo, hi)};
    std::sort(picks.begin(), picks.end(),
              [&](std::size_t a, std::size_t b) { return ranks_before(tokens[a], tokens[b]); });
    std::swap(tokens[picks[1]], tokens[hi - 1]);
    const ranked_token pivot = tokens[hi - 1];
    const auto split = std::partition(tokens.begin() + static_cast<std::ptrdiff_t>(lo),
                                      tokens.begin() + static_cast<std::ptrdiff_t>(hi - 1),
                                      [&](const ranked_token& t) { return ranks_before(t, pivot); });
    const auto mid = static_cast<std::size_t>(split - tokens.begin());
    std::swap(tokens[mid], tokens[hi - 1]);
    double mass_through_mid = mass_before;
    for (std::size_t r = lo; r < mid; ++r) mass_through_mid += tokens[r].weight;
    if (mass_through_mid >= target) {
      hi = mid;
      hi_reaches_target = true;
      continue;
    }
    const double mass_with_pivot = mass_through_mid + pivot.weight;
    if (mass_with_pivot >= target) {
      if (target - mass_through_mid <= margin || mass_with_pivot - target <= margin) return {};
      return mid + 1;
    }
    lo = mid + 1;
    mass_before = mass_with_pivot;
  }
  std::sort(tokens.begin() + static_cast<std::ptrdiff_t>(lo),
            tokens.begin() + static_cast<std::ptrdiff_t>(hi), ranks_before);
  double mass_above = mass_before;
  for (std::size_t r = lo; r < hi; ++r) {
    const double mass_through = mass_above + tokens[r].weight;
    if (mass_through >= target) {
      if (target - mass_above <= margin || mass_through - target <= margin) return {};
      return r + 1;
    }
    mass_above = mass_through;
  }
  // Summed here, [0, hi) falls short; either the earlier sum that reached target rounded the
  // other way, or (hi = n) top_p * total rounded up to the whole mass and every token stays.
  if (hi_reaches_target || target - mass_above <= margin) return {};
  return hi;
}

}  // namespace

void sanitize_logits(std::span<float> logits) {
  for (float& x : logits) x = finite_or_clamped(x);
}

void apply_logit_bias(std::span<float> logits, const std::map<token_id, float>& bias) {
  for (const auto& [id, value] : bias)
    if (in_row(logits, id)) logits[id] = finite_or_clamped(double{logits[id]} + value);
}

void mask_tokens(std::span<float> logits, std::span<const token_id> ids) {
  for (token_id id : ids)
    if (in_row(logits, id)) logits[id] = negative_infinity;
}

void apply_penalties(std::span<float> logits, std::span<const token_id> prompt_ids,
                     std::span<const token_id> output_ids, double repetition_penalty,
                     double presence_penalty, double frequency_penalty) {
  if (repetition_penalty != 1.0) {
    const auto penalize = [&](token_id id) {
      if (!in_row(logits, id)) return;
      const double x = logits[id];
      logits[id] = finite_or_clamped(x > 0 ? x / repetition_penalty : x * repetition_penalty);
    };
    // Each id once. The engine passes the prompt's distinct ids sorted (others are sorted here),
    // so only the few output ids need sorting.
    std::vector<token_id> storage;
    const std::span<const token_id> prompt = sorted_distinct(prompt_ids, storage);
    for (token_id id : prompt) penalize(id);
    std::vector<token_id> rest(output_ids.begin(), output_ids.end());
    sort_distinct(rest);
    for (token_id id : rest)
      if (!std::binary_search(prompt.begin(), prompt.end(), id)) penalize(id);
  }
  if (presence_penalty == 0.0 && frequency_penalty == 0.0) return;
  std::unordered_map<token_id, std::int64_t> counts;
  for (token_id id : output_ids) ++counts[id];
  for (const auto& [id, count] : counts) {
    if (!in_row(logits, id)) continue;
    // One rounding, explicitly: compilers may or may not fuse a*b+c, and the device sampler must match.
    const double penalty = std::fma(frequency_penalty, static_cast<double>(count), presence_penalty);
    logits[id] = finite_or_clamped(double{logits[id]} - penalty);
  }
}

void apply_temperature(std::span<float> logits, double temperature) {
  for (float& x : logits) x = finite_or_clamped(double{x} / temperature);
}

void apply_top_k(std::span<float> logits, std::int32_t k) {
  if (k <= 0 || static_cast<std::size_t>(k) >= logits.size()) return;
  std::vector<float> values(logits.begin(), logits.end());
  auto kth = values.begin() + (k - 1);
  std::nth_element(values.begin(), kth, values.end(), std::greater<float>{});
  const float threshold = *kth;
  for (float& x : logits)
    if (x < threshold) x = negative_infinity;
}

void apply_top_p(std::span<float> logits, double top_p) {
  if (top_p >= 1.0) return;
  const float best = row_max(logits);
  if (best == negative_infinity) return;
  // Trained models put nearly all the mass within a few nats of the top: count that head too.
  constexpr float head_depth = 10.0f;
  const float head_floor = best - head_depth;
  std::vector<ranked_token> tokens;
  tokens.reserve(logits.size());
  double total = 0.0;
  double head_mass = 0.0;
  std::size_t num_head = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] == negative_infinity) continue;
    const double weight = std::exp(double{logits[i]} - best);
    tokens.push_back({rank_key(logits[i], static_cast<token_id>(i)), weight});
    total += weight;
    const bool in_head = logits[i] > head_floor;
    num_head += in_head ? 1 : 0;
    head_mass += in_head ? weight : 0.0;
  }
  const double target = top_p * total;
  // Each mass the search compares, like each ranked running sum the definition compares, adds its
  // tokens one at a time: within n * epsilon * total of the exact mass. Twice that, with slack.
  const double margin =
      4.0 * static_cast<double>(tokens.size() + 64) * std::numeric_limits<double>::epsilon() * total;
  // A small head holding the target mass is a rank prefix (logit > head_floor): search only it.
  std::span<ranked_token> searched = tokens;
  const bool head_reaches_target = head_mass >= target && num_head * 4 <= tokens.size();
  if (head_reaches_target) {
    const std::uint64_t head_end = rank_key(head_floor, 0);
    std::partition(tokens.begin(), tokens.end(),
                   [&](const ranked_token& t) { return t.rank < head_end; });
    searched = searched.first(num_head);
  }
  const auto cut = find_top_p_cut(searched, target, margin, head_reaches_target);
  const std::size_t num_kept = cut ? *cut : top_p_cut_by_sort(tokens, target);
  for (std::size_t r = num_kept; r < tokens.size(); ++r)
    logits[static_cast<std::size_t>(id_of(tokens[r]))] = negative_infinity;
}

void apply_min_p(std::span<float> logits, double min_p) {
  if (min_p <= 0.0) return;
  const float best = row_max(logits);
  if (best == negative_infinity) return;
  // p_i < min_p * p_max  <=>  logit_i < max + log(min_p): no softmax needed.
  const double threshold = double{best} + std::log(min_p);
  for (float& x : logits)
    if (double{x} < threshold) x = negative_infinity;
}

token_id argmax(std::span<const float> logits) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<token_id>(best);
}

token_id sample_from(std::span<const float> logits, double u) {
  const float best = row_max(logits);
  if (best == negative_infinity) return argmax(logits);
  std::vector<double> weights(logits.size());
  double total = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) total += weights[i] = std::exp(double{logits[i]} - best);
  const double target = u * total;
  double cumulative = 0.0;
  std::optional<std::size_t> last_positive;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (weights[i] <= 0.0) continue;
    cumulative += weights[i];
    last_positive = i;
    if (cumulative > target) return static_cast<token_id>(i);
  }
  // Rounding can leave target just above the summed mass: the last token with mass takes it.
  return static_cast<token_id>(*last_positive);
}

std::vector<double> log_softmax(std::span<const float> logits) {
  std::vector<double> out(logits.size(), -std::numeric_limits<double>::infinity());
  const float best = row_max(logits);
  if (best == negative_infinity) return out;
  double total = 0.0;
  for (float x : logits) total += std::exp(double{x} - best);
  // Subtract the max before adding log(total): max + log(total) would lose log(total) at 1e38.
  const double log_total = std::log(total);
  for (std::size_t i = 0; i < logits.size(); ++i) out[i] = (double{logits[i]} - best) - log_total;
  return out;
}

}  // namespace glm4::engine
