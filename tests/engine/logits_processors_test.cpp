// Each logit transform against small hand-computed examples.
#include "engine/logits_processors.hpp"

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

namespace glm4::engine {
namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

std::vector<float> log_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

// Which ids survived a transform (are not -inf).
std::vector<token_id> kept(const std::vector<float>& logits) {
  std::vector<token_id> ids;
  for (std::size_t i = 0; i < logits.size(); ++i)
    if (logits[i] != -inf) ids.push_back(static_cast<token_id>(i));
  return ids;
}

// What apply_top_p must keep: rank every token (logit descending, lower id first on ties) and
// keep it while the mass ranked above it is below top_p of the total.
std::vector<token_id> top_p_by_full_sort(const std::vector<float>& row, double top_p) {
  if (top_p >= 1.0) return kept(row);
  const float best = *std::max_element(row.begin(), row.end());
  if (best == -inf) return {};
  std::vector<token_id> order;
  double total = 0.0;
  for (std::size_t i = 0; i < row.size(); ++i) {
    if (row[i] == -inf) continue;
    order.push_back(static_cast<token_id>(i));
    total += std::exp(double{row[i]} - best);
  }
  std::sort(order.begin(), order.end(), [&](token_id a, token_id b) {
    return row[a] != row[b] ? row[a] > row[b] : a < b;
  });
  std::vector<token_id> expected;
  double mass_above = 0.0;
  for (token_id id : order) {
    if (mass_above >= top_p * total) break;
    expected.push_back(id);
    mass_above += std::exp(double{row[id]} - best);
  }
  std::sort(expected.begin(), expected.end());
  return expected;
}

constexpr std::size_t glm4_vocab_size = 151552;

// Logits of a random-weight model: small spread, so the softmax is nearly uniform.
std::vector<float> flat_row(std::mt19937& random) {
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> row(glm4_vocab_size);
  for (float& x : row) x = normal(random);
  return row;
}

// Logits of a trained model: a few tokens far above a wide tail.
std::vector<float> peaked_row(std::mt19937& random) {
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> row(glm4_vocab_size);
  for (float& x : row) x = normal(random);
  for (std::size_t i = 0; i < 8; ++i) row[random() % row.size()] = 20.0f - static_cast<float>(i);
  return row;
}

}  // namespace

TEST_CASE("sanitize turns NaN into -inf and +inf into the largest float", "[logits]") {
  std::vector<float> row = {std::numeric_limits<float>::quiet_NaN(), inf, -inf, 1.5f};
  sanitize_logits(row);
  CHECK(row == std::vector<float>{-inf, std::numeric_limits<float>::max(), -inf, 1.5f});
}

TEST_CASE("logit_bias adds to the named ids and ignores ids outside the row", "[logits]") {
  std::vector<float> row = {0.0f, 1.0f, 2.0f};
  apply_logit_bias(row, {{1, 2.5f}, {2, -100.0f}, {5, 1.0f}});
  CHECK(row == std::vector<float>{0.0f, 3.5f, -98.0f});
}

TEST_CASE("mask_tokens sets -inf", "[logits]") {
  std::vector<float> row = {1.0f, 2.0f, 3.0f};
  const std::vector<token_id> ids = {0, 2, 7};
  mask_tokens(row, ids);
  CHECK(row == std::vector<float>{-inf, 2.0f, -inf});
}

TEST_CASE("penalties: repetition on prompt and output and presence and frequency on output", "[logits]") {
  // Token 0 is in the prompt only, 1 once in the output, 2 twice in the output, 3 nowhere.
  std::vector<float> row = {2.0f, -2.0f, 1.0f, 0.5f};
  const std::vector<token_id> prompt = {0};
  const std::vector<token_id> output = {1, 2, 2};
  apply_penalties(row, prompt, output, 2.0, 0.5, 0.25);
  // 0: 2 / 2 = 1.  1: -2 * 2 - (0.25 * 1 + 0.5) = -4.75.  2: 1 / 2 - (0.25 * 2 + 0.5) = -0.5.
  CHECK(row == std::vector<float>{1.0f, -4.75f, -0.5f, 0.5f});
}

TEST_CASE("the repetition penalty counts each id once, from a raw prompt or its sorted distinct ids", "[logits]") {
  std::mt19937 rng(9);
  std::uniform_int_distribution<token_id> id(-3, 60);  // ids outside the row are skipped
  std::uniform_real_distribution<float> logit(-4.0f, 4.0f);
  for (int round = 0; round < 50; ++round) {
    std::vector<float> row(50);
    for (float& x : row) x = logit(rng);
    std::vector<token_id> prompt, output;
    for (int i = 0; i < 40; ++i) prompt.push_back(id(rng));
    for (int i = 0; i < 10; ++i) output.push_back(id(rng));
    std::vector<token_id> distinct = prompt;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    std::vector<float> from_raw = row, from_distinct = row, want = row;
    apply_penalties(from_raw, prompt, output, 1.7, 0.0, 0.0);
    apply_penalties(from_distinct, distinct, output, 1.7, 0.0, 0.0);
    for (std::size_t t = 0; t < want.size(); ++t) {
      const auto is = [&](const std::vector<token_id>& ids) {
        return std::find(ids.begin(), ids.end(), static_cast<token_id>(t)) != ids.end();
      };
      if (is(prompt) || is(output)) want[t] = want[t] > 0 ? want[t] / 1.7f : want[t] * 1.7f;
    }
    CHECK(from_raw == from_distinct);
    for (std::size_t t = 0; t < want.size(); ++t) CHECK(from_raw[t] == Approx(want[t]).epsilon(1e-6));
  }
}

TEST_CASE("penalties at their neutral values change nothing", "[logits]") {
  std::vector<float> row = {2.0f, -2.0f};
  const std::vector<token_id> ids = {0, 1, 1};
  apply_penalties(row, ids, ids, 1.0, 0.0, 0.0);
  CHECK(row == std::vector<float>{2.0f, -2.0f});
}

TEST_CASE("temperature divides and stays finite", "[logits]") {
  std::vector<float> row = {1.0f, -2.0f, -inf};
  apply_temperature(row, 0.5);
  CHECK(row == std::vector<float>{2.0f, -4.0f, -inf});
  std::vector<float> huge = {3e38f, -3e38f};
  apply_temperature(huge, 0.01);
  CHECK(huge[0] == std::numeric_limits<float>::max());
  CHECK(huge[1] == -inf);
}

TEST_CASE("top_k keeps the k largest and ties with the k-th", "[logits]") {
  std::vector<float> row = {1.0f, 3.0f, 2.0f, 0.0f};
  apply_top_k(row, 2);
  CHECK(kept(row) == std::vector<token_id>{1, 2});
  std::vector<float> tied = {5.0f, 4.0f, 1.0f, 4.0f};
  apply_top_k(tied, 2);
  CHECK(kept(tied) == std::vector<token_id>{0, 1, 3});
  std::vector<float> off = {1.0f, 2.0f};
  apply_top_k(off, 0);
  CHECK(kept(off) == std::vector<token_id>{0, 1});
  apply_top_k(off, 5);
  CHECK(kept(off) == std::vector<token_id>{0, 1});
}

TEST_CASE("top_p keeps the smallest prefix reaching the mass", "[logits]") {
  const auto probs = log_of({0.15, 0.5, 0.05, 0.3});
  auto row = probs;
  apply_top_p(row, 0.75);  // 0.5 + 0.3 = 0.8 >= 0.75
  CHECK(kept(row) == std::vector<token_id>{1, 3});
  row = probs;
  apply_top_p(row, 0.9);  // 0.5 + 0.3 + 0.15 = 0.95
  CHECK(kept(row) == std::vector<token_id>{0, 1, 3});
  row = probs;
  apply_top_p(row, 0.1);  // the most likely token always stays
  CHECK(kept(row) == std::vector<token_id>{1});
  row = probs;
  apply_top_p(row, 1.0);
  CHECK(kept(row) == std::vector<token_id>{0, 1, 2, 3});
  auto tied = log_of({0.4, 0.4, 0.2});
  apply_top_p(tied, 0.3);  // ties rank the lower id first
  CHECK(kept(tied) == std::vector<token_id>{0});
}

TEST_CASE("top_p over a long flat row widens its sorted head", "[logits]") {
  std::vector<float> row(1000, 0.25f);
  apply_top_p(row, 0.5);  // equal mass: the 500 lowest ids reach exactly half
  std::vector<token_id> first_half(500);
  for (token_id i = 0; i < 500; ++i) first_half[static_cast<std::size_t>(i)] = i;
  CHECK(kept(row) == first_half);
}

TEST_CASE("top_p agrees with a full-sort reference on random rows", "[logits]") {
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> row(3000);
    for (float& x : row) x = normal(random);
    const double top_p = 0.05 + 0.045 * trial;
    // Reference: rank every token, keep while the mass ranked above is below top_p.
    std::vector<token_id> order(row.size());
    for (std::size_t i = 0; i < row.size(); ++i) order[i] = static_cast<token_id>(i);
    std::sort(order.begin(), order.end(), [&](token_id a, token_id b) {
      return row[a] != row[b] ? row[a] > row[b] : a < b;
    });
    double total = 0.0;
    for (float x : row) total += std::exp(double{x});
    std::vector<token_id> expected;
    double mass_above = 0.0;
    for (token_id id : order) {
      if (mass_above >= top_p * total) break;
      expected.push_back(id);
      mass_above += std::exp(double{row[id]});
    }
    std::sort(expected.begin(), expected.end());
    apply_top_p(row, top_p);
    INFO("top_p " << top_p);
    CHECK(kept(row) == expected);
  }
}

TEST_CASE("top_p agrees with the reference on rows of exact ties and -inf", "[logits]") {
  std::mt19937 random(11);
  const std::vector<float> levels = {-inf, -3.0f, -1.0f, 0.0f, 0.5f, 2.0f};
  for (int trial = 0; trial < 40; ++trial) {
    // Few distinct values, so the cut usually falls inside a group of equal logits.
    std::vector<float> row(1 + random() % 5000);
    const auto num_levels = 2 + random() % (levels.size() - 1);
    for (float& x : row) x = levels[random() % num_levels];
    const double top_p = std::uniform_real_distribution<double>(0.0, 1.0)(random);
    const auto expected = top_p_by_full_sort(row, top_p);
    apply_top_p(row, top_p);
    INFO("trial " << trial << " size " << row.size() << " top_p " << top_p);
    CHECK(kept(row) == expected);
  }
}

TEST_CASE("top_p on equal logits keeps the lowest ids, the cut landing exactly on the mass", "[logits]") {
  for (const double top_p : {0.25, 0.5, 0.75, 0.3}) {
    std::vector<float> row(4096, 1.0f);
    row[7] = -inf;  // 4095 finite tokens of mass 1 each: sums are exact integers
    const auto expected = top_p_by_full_sort(row, top_p);
    apply_top_p(row, top_p);
    INFO("top_p " << top_p);
    CHECK(kept(row) == expected);
    CHECK(kept(row).size() == static_cast<std::size_t>(std::ceil(top_p * 4095)));
  }
  std::vector<float> masked(10, -inf);
  apply_top_p(masked, 0.5);
  CHECK(kept(masked).empty());
}

TEST_CASE("top_p agrees with the reference on full-vocabulary flat and peaked rows", "[logits]") {
  std::mt19937 random(13);
  for (const double top_p : {0.8, 0.95, 0.3, 0.999999}) {
    for (auto row : {flat_row(random), peaked_row(random)}) {
      const auto expected = top_p_by_full_sort(row, top_p);
      apply_top_p(row, top_p);
      INFO("top_p " << top_p);
      CHECK(kept(row) == expected);
    }
  }
}

TEST_CASE("top_p per-row time on full-vocabulary rows", "[.bench][logits]") {
  std::mt19937 random(17);
  const auto time_rows = [&](const char* name, const std::vector<float>& row, double top_p) {
    // Median and best of several runs: the build machine is shared, so single runs are noisy.
    constexpr std::size_t num_reps = 21;
    std::vector<double> times_ms;
    std::size_t num_kept = 0;
    for (std::size_t rep = 0; rep < num_reps; ++rep) {
      auto copy = row;
      const auto start = std::chrono::steady_clock::now();
      apply_top_p(copy, top_p);
      const auto stop = std::chrono::steady_clock::now();
      times_ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
      num_kept = kept(copy).size();
    }
    std::sort(times_ms.begin(), times_ms.end());
    std::cout << "top_p " << top_p << " " << name << " row (V=" << row.size()
              << "): median " << times_ms[num_reps / 2] << " ms/row, best " << times_ms[0]
              << " ms, " << num_kept << " kept\n";
    CHECK(num_kept > 0);
  };
  const auto flat = flat_row(random);
  const auto peaked = peaked_row(random);
  for (const double top_p : {0.8, 0.95}) {
    time_rows("flat", flat, top_p);
    time_rows("peaked", peaked, top_p);
  }
}

TEST_CASE("min_p drops tokens below a fraction of the top probability", "[logits]") {
  const auto probs = log_of({0.5, 0.3, 0.15, 0.05});
  auto row = probs;
  apply_min_p(row, 0.2);  // threshold 0.1
  CHECK(kept(row) == std::vector<token_id>{0, 1, 2});
  row = probs;
  apply_min_p(row, 0.5);  // threshold 0.25
  CHECK(kept(row) == std::vector<token_id>{0, 1});
  row = probs;
  apply_min_p(row, 0.0);
  CHECK(kept(row) == std::vector<token_id>{0, 1, 2, 3});
}

TEST_CASE("argmax takes the lowest id on ties", "[logits]") {
  CHECK(argmax(std::vector<float>{1.0f, 3.0f, 3.0f}) == 1);
  CHECK(argmax(std::vector<float>{-inf, -inf}) == 0);
}

TEST_CASE("sample_from walks the CDF in id order", "[logits]") {
  const auto row = log_of({0.25, 0.5, 0.25});
  CHECK(sample_from(row, 0.0) == 0);
  CHECK(sample_from(row, 0.24) == 0);
  CHECK(sample_from(row, 0.26) == 1);
  CHECK(sample_from(row, 0.74) == 1);
  CHECK(sample_from(row, 0.76) == 2);
  CHECK(sample_from(row, std::nextafter(1.0, 0.0)) == 2);
  const std::vector<float> one = {-inf, 0.0f, -inf};
  CHECK(sample_from(one, 0.0) == 1);
  CHECK(sample_from(one, 0.999) == 1);
  CHECK(sample_from(std::vector<float>{-inf, -inf}, 0.5) == 0);
}

TEST_CASE("log_softmax is exact and overflow-free and never NaN", "[logits]") {
  const auto small = log_softmax(std::vector<float>{0.0f, static_cast<float>(std::log(3.0))});
  CHECK(small[0] == Approx(std::log(0.25)));
  CHECK(small[1] == Approx(std::log(0.75)));
  const float largest = std::numeric_limits<float>::max();
  const auto huge = log_softmax(std::vector<float>{largest, largest, -inf});
  CHECK(huge[0] == Approx(std::log(0.5)));
  CHECK(huge[2] == -std::numeric_limits<double>::infinity());
  for (double x : log_softmax(std::vector<float>{-inf, -inf})) {
    CHECK_FALSE(std::isnan(x));
    CHECK(x == -std::numeric_limits<double>::infinity());
  }
}

}  // namespace glm4::engine
