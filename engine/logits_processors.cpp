// Logit transforms: bias, masking, penalties, temperature, top-k, top-p, min-p, and draws.
#include "engine/logits_processors.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <unordered_map>
#include <unordered_set>

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
    std::unordered_set<token_id> seen(prompt_ids.begin(), prompt_ids.end());
    seen.insert(output_ids.begin(), output_ids.end());
    for (token_id id : seen) {
      if (!in_row(logits, id)) continue;
      const double x = logits[id];
      logits[id] = finite_or_clamped(x > 0 ? x / repetition_penalty : x * repetition_penalty);
    }
  }
  if (presence_penalty == 0.0 && frequency_penalty == 0.0) return;
  std::unordered_map<token_id, std::int64_t> counts;
  for (token_id id : output_ids) ++counts[id];
  for (const auto& [id, count] : counts) {
    if (!in_row(logits, id)) continue;
    const double penalty = frequency_penalty * static_cast<double>(count) + presence_penalty;
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
  std::vector<token_id> order;
  double total = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] == negative_infinity) continue;
    order.push_back(static_cast<token_id>(i));
    total += std::exp(double{logits[i]} - best);
  }
  const auto ranks_before = [&](token_id a, token_id b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  };
  // Model distributions are peaked: rank a short head first and widen it only while the head
  // holds less than top_p of the mass (a flat row ends in a full sort).
  std::size_t num_kept = order.size();
  const double target = top_p * total;
  for (std::size_t head = std::min<std::size_t>(256, order.size());;
       head = std::min(order.size(), head * 8)) {
    const auto head_end = order.begin() + static_cast<std::ptrdiff_t>(head);
    std::partial_sort(order.begin(), head_end, order.end(), ranks_before);
    double mass_above = 0.0;
    std::size_t r = 0;
    for (; r < head && mass_above < target; ++r) mass_above += std::exp(double{logits[order[r]]} - best);
    if (mass_above >= target || head == order.size()) {
      num_kept = r;
      break;
    }
  }
  for (std::size_t r = num_kept; r < order.size(); ++r) logits[order[r]] = negative_infinity;
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
