// Sampling rows on the CPU the way the CUDA kernel does it: the same stages, radix selections
// over ordered keys with 256-bin histograms, and ties ranked by id. It is the reference the CUDA
// kernel is compared with, and it is itself compared with engine::sampler
// (tests/engine/device_sampling_test.cpp).
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_ops.hpp"
#include "kernels/sampling_spec.hpp"

namespace glm4::kernels::cpu {
namespace {

using namespace sampling_math;

struct row_view {
  const float* logits;
  std::int64_t vocab;
};

// One thread's buffers, reused row after row: the row as it is filtered, and its weights.
struct row_work {
  std::vector<float> x;
  std::vector<double> weights;
};

// Lowest id among the largest values.
std::int32_t argmax_of(const std::vector<float>& x) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < x.size(); ++i)
    if (x[i] > x[best]) best = i;
  return static_cast<std::int32_t>(best);
}

std::int32_t argmax_of_sanitized(row_view row) {
  std::int64_t best = 0;
  float best_value = sanitized(row.logits[0]);
  for (std::int64_t i = 1; i < row.vocab; ++i) {
    const float value = sanitized(row.logits[i]);
    if (value > best_value) {
      best = i;
      best_value = value;
    }
  }
  return static_cast<std::int32_t>(best);
}

float max_of(const std::vector<float>& x) {
  float best = negative_infinity();
  for (float v : x) best = v > best ? v : best;
  return best;
}

// Drops every value below the k-th largest (counting repeats), found by radix selection.
void keep_top_k(std::vector<float>& x, std::uint32_t k) {
  std::uint32_t prefix = 0, prefix_mask = 0, rank = k;
  for (int shift = 32 - radix_bits; shift >= 0; shift -= radix_bits) {
    std::array<std::uint32_t, radix_bins> counts{};
    for (float v : x) {
      const std::uint32_t key = ordered_key(v);
      if ((key & prefix_mask) == prefix) ++counts[static_cast<std::size_t>(radix_bin(key, shift))];
    }
    const picked_bin pick = pick_bin_by_count(counts.data(), rank);
    rank -= static_cast<std::uint32_t>(pick.before);
    prefix |= static_cast<std::uint32_t>(pick.bin) << shift;
    prefix_mask |= static_cast<std::uint32_t>(radix_bins - 1) << shift;
  }
  for (float& v : x)
    if (ordered_key(v) < prefix) v = negative_infinity();
}

// Keeps the shortest prefix in rank order (value descending, id ascending) whose mass reaches
// top_p of the total: radix selection by mass finds the value the cut falls on, then the tokens
// tied there are kept lowest id first.
void keep_top_p(std::vector<float>& x, std::vector<double>& weights, double top_p) {
  const float best = max_of(x);
  if (best == negative_infinity()) return;
  // Each weight once: the passes below read them again and again.
  weights.resize(x.size());
  double total = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) total += weights[i] = weight_of(x[i], best);
  const double target = top_p * total;
  if (!(target > 0.0)) {
    for (float& v : x) v = negative_infinity();
    return;
  }
  std::uint32_t prefix = 0, prefix_mask = 0, num_ties = 0;
  double mass_above = 0.0;
  for (int shift = 32 - radix_bits; shift >= 0; shift -= radix_bits) {
    std::array<std::uint32_t, radix_bins> counts{};
    std::array<double, radix_bins> masses{};
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::uint32_t key = ordered_key(x[i]);
      if (x[i] == negative_infinity() || (key & prefix_mask) != prefix) continue;
      const auto bin = static_cast<std::size_t>(radix_bin(key, shift));
      ++counts[bin];
      masses[bin] += weights[i];
    }
    const picked_bin pick = pick_bin_by_mass(counts.data(), masses.data(), mass_above, target);
    mass_above = pick.before;
    num_ties = counts[static_cast<std::size_t>(pick.bin)];
    prefix |= static_cast<std::uint32_t>(pick.bin) << shift;
    prefix_mask |= static_cast<std::uint32_t>(radix_bins - 1) << shift;
  }
  const std::uint32_t num_kept_ties = ties_kept(mass_above, weight_of(value_of_key(prefix), best), num_ties, target);
  std::uint32_t tie_ordinal = 0;
  for (float& v : x) {
    if (v == negative_infinity()) continue;
    const std::uint32_t key = ordered_key(v);
    if (key < prefix || (key == prefix && tie_ordinal++ >= num_kept_ties)) v = negative_infinity();
  }
}

void keep_min_p(std::vector<float>& x, double min_p) {
  const float best = max_of(x);
  if (best == negative_infinity()) return;
  const double threshold = static_cast<double>(best) + std::log(min_p);
  for (float& v : x)
    if (static_cast<double>(v) < threshold) v = negative_infinity();
}

// The first id at which the running mass in id order passes uniform * total.
std::int32_t draw(const std::vector<float>& x, std::vector<double>& weights, float best, double uniform) {
  weights.resize(x.size());
  double total = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) total += weights[i] = weight_of(x[i], best);
  const double target = uniform * total;
  double cumulative = 0.0;
  std::int32_t last_positive = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double weight = weights[i];
    if (weight <= 0.0) continue;
    cumulative += weight;
    last_positive = static_cast<std::int32_t>(i);
    if (cumulative > target) return last_positive;
  }
  return last_positive;  // rounding left target just above the summed mass
}

std::int32_t sample_row(row_view row, const row_sampling_spec& spec, std::span<const token_edit> edits, row_work& work) {
  std::vector<float>& x = work.x;
  x.resize(static_cast<std::size_t>(row.vocab));
  for (std::int64_t i = 0; i < row.vocab; ++i) x[static_cast<std::size_t>(i)] = sanitized(row.logits[i]);
  for (const token_edit& edit : edits.subspan(static_cast<std::size_t>(spec.first_edit),
                                              static_cast<std::size_t>(spec.num_edits)))
    if (edit.id >= 0 && edit.id < row.vocab)
      x[static_cast<std::size_t>(edit.id)] = apply_edit(x[static_cast<std::size_t>(edit.id)], edit, spec);
  if (spec.greedy) {
    const std::int32_t best = argmax_of(x);
    return x[static_cast<std::size_t>(best)] == negative_infinity() ? argmax_of_sanitized(row) : best;
  }
  for (float& v : x) v = apply_temperature(v, spec.temperature);
  if (spec.top_k > 0 && spec.top_k < row.vocab) keep_top_k(x, static_cast<std::uint32_t>(spec.top_k));
  if (spec.top_p < 1.0) keep_top_p(x, work.weights, spec.top_p);
  if (spec.min_p > 0.0) keep_min_p(x, spec.min_p);
  const float best = max_of(x);
  if (best == negative_infinity()) return argmax_of_sanitized(row);
  return draw(x, work.weights, best, spec.uniform);
}

}  // namespace

void expect_sampling_args(std::span<std::int32_t> ids, const tensor& logits, std::span<const row_sampling_spec> rows,
                          std::span<const token_edit> edits) {
  expect_rank(logits, dtype::f32, 2, "sample_rows logits");
  if (logits.dim(1) <= 0) throw std::invalid_argument("sample_rows: logits have no vocabulary columns");
  const auto num_rows = static_cast<std::size_t>(logits.dim(0));
  if (rows.size() != num_rows || ids.size() != num_rows)
    throw std::invalid_argument("sample_rows: " + std::to_string(num_rows) + " logit rows but " +
                                std::to_string(rows.size()) + " specs and " + std::to_string(ids.size()) + " ids");
  for (const row_sampling_spec& spec : rows)
    if (spec.first_edit < 0 || spec.num_edits < 0 ||
        static_cast<std::size_t>(spec.first_edit) + static_cast<std::size_t>(spec.num_edits) > edits.size())
      throw std::invalid_argument("sample_rows: a row's edits [" + std::to_string(spec.first_edit) + ", +" +
                                  std::to_string(spec.num_edits) + ") run past the " + std::to_string(edits.size()) +
                                  " edits given");
}

void sample_rows(std::span<std::int32_t> ids, const tensor& logits, std::span<const row_sampling_spec> rows,
                 std::span<const token_edit> edits, int num_threads) {
  expect_sampling_args(ids, logits, rows, edits);
  const std::int64_t num_rows = logits.dim(0);
  const std::int64_t vocab = logits.dim(1);
  const auto* data = static_cast<const float*>(logits.data);
  const int threads = static_cast<int>(std::min<std::int64_t>(num_threads, num_rows));
#pragma omp parallel num_threads(threads > 0 ? threads : 1)
  {
    row_work work;
#pragma omp for schedule(dynamic)
    for (std::int64_t r = 0; r < num_rows; ++r)
      ids[static_cast<std::size_t>(r)] =
          sample_row({data + r * vocab, vocab}, rows[static_cast<std::size_t>(r)], edits, work);
  }
}

}  // namespace glm4::kernels::cpu
