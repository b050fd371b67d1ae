// The sampling pipeline: greedy, min_tokens, degenerate rows, seeded determinism, statistics, logprobs.
#include "engine/sampler.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace glm4::engine {
namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

sequence_sampling_state state_of(const std::vector<token_id>& prompt, const std::vector<token_id>& output,
                                 std::uint64_t seed = 0) {
  return {prompt, output, seed};
}

std::vector<double> softmax(const std::vector<double>& logits) {
  std::vector<double> p;
  double total = 0.0;
  for (double x : logits) total += std::exp(x);
  for (double x : logits) p.push_back(std::exp(x) / total);
  return p;
}

// Pearson's statistic of observed counts against expected probabilities (zero-probability bins
// must be empty and are skipped).
double chi_square(const std::vector<int>& counts, const std::vector<double>& probs, int num_draws) {
  double statistic = 0.0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      REQUIRE(counts[i] == 0);
      continue;
    }
    const double expected = probs[i] * num_draws;
    statistic += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return statistic;
}

// Draw num_draws tokens of one request at steps 0..num_draws-1 (an output of filler tokens sets the
// step; no penalties apply, so only the step changes the draw).
std::vector<int> histogram(const sampler& s, const std::vector<float>& logits, const sampling_params& params,
                           int num_draws) {
  std::vector<int> counts(logits.size(), 0);
  const std::vector<token_id> prompt = {0};
  const std::vector<token_id> filler(static_cast<std::size_t>(num_draws), 0);
  for (int step = 0; step < num_draws; ++step) {
    const sequence_sampling_state state{prompt, std::span(filler).first(static_cast<std::size_t>(step)), 99};
    ++counts[static_cast<std::size_t>(s.sample(logits, params, state).token)];
  }
  return counts;
}

// A toy "model": logits that depend on the last token, so a run's path depends on its draws.
std::vector<float> toy_logits(const std::vector<token_id>& tokens) {
  const token_id last = tokens.back();
  std::vector<float> row(8);
  for (std::size_t i = 0; i < row.size(); ++i)
    row[i] = static_cast<float>((i * 7 + static_cast<std::size_t>(last) * 3) % 5) * 0.4f;
  return row;
}

struct toy_request {
  std::vector<token_id> prompt;
  std::vector<token_id> output;
  std::uint64_t seed;

  void step(const sampler& s, const sampling_params& params) {
    std::vector<token_id> all = prompt;
    all.insert(all.end(), output.begin(), output.end());
    output.push_back(s.sample(toy_logits(all), params, {prompt, output, seed}).token);
  }
};

}  // namespace

TEST_CASE("greedy takes the argmax with the lowest id on ties", "[sampler]") {
  const sampler s({});
  sampling_params params;
  params.temperature = 0.0;
  CHECK(s.sample(std::vector<float>{0.5f, 2.0f, 2.0f, 1.0f}, params, state_of({0}, {})).token == 1);
  params.logit_bias = {{3, 1.5f}};
  CHECK(s.sample(std::vector<float>{0.5f, 2.0f, 2.0f, 1.0f}, params, state_of({0}, {})).token == 3);
}

TEST_CASE("greedy sees the penalties", "[sampler]") {
  const sampler s({});
  sampling_params params;
  params.temperature = 0.0;
  params.frequency_penalty = 1.0;
  // Token 0 leads by 1.5 but appeared twice in the output: 2.0 - 2 = 0 < 0.5.
  CHECK(s.sample(std::vector<float>{2.0f, 0.5f}, params, state_of({1}, {0, 0})).token == 1);
}

TEST_CASE("min_tokens masks stop ids and EOS until enough tokens exist", "[sampler]") {
  const sampler s({2});
  sampling_params params;
  params.temperature = 0.0;
  params.min_tokens = 2;
  params.stop_token_ids = {3};
  const std::vector<float> logits = {0.0f, 1.0f, 5.0f, 4.0f};
  CHECK(s.sample(logits, params, state_of({0}, {1})).token == 1);     // EOS 2 and stop 3 masked
  CHECK(s.sample(logits, params, state_of({0}, {1, 1})).token == 2);  // min_tokens reached
  params.ignore_eos = true;  // ignore_eos leaves EOS samplable: only stop ids are masked
  CHECK(s.sample(logits, params, state_of({0}, {1})).token == 2);
}

TEST_CASE("a row masked entirely falls back to the raw argmax and an all -inf row gives 0 and never NaN",
          "[sampler]") {
  const sampler s({1});
  sampling_params params;
  params.min_tokens = 1;
  params.logprobs = true;
  params.top_logprobs = 2;
  const auto masked = s.sample(std::vector<float>{-inf, 3.0f, -inf}, params, state_of({0}, {}));
  CHECK(masked.token == 1);
  const auto dead = s.sample(std::vector<float>{-inf, -inf, -inf}, params, state_of({0}, {}));
  CHECK(dead.token == 0);
  REQUIRE(dead.logprob.has_value());
  CHECK(*dead.logprob == -inf);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto broken = s.sample(std::vector<float>{nan, 1.0f, nan}, params, state_of({0}, {}, 3));
  CHECK(broken.token == 1);
  CHECK(*broken.logprob == Approx(0.0));
}

TEST_CASE("a seeded request draws the same tokens whatever is interleaved with it", "[sampler]") {
  const sampler s({});
  sampling_params params;
  params.temperature = 1.0;
  toy_request alone{{1, 2}, {}, 1234};
  for (int i = 0; i < 40; ++i) alone.step(s, params);

  toy_request a{{1, 2}, {}, 1234};
  toy_request b{{5}, {}, 77};
  toy_request c{{1, 2}, {}, 1235};
  for (int i = 0; i < 40; ++i) {
    b.step(s, params);
    if (i % 3 == 0) c.step(s, params);
    a.step(s, params);
    b.step(s, params);
  }
  CHECK(a.output == alone.output);
  // A different seed on the same prompt takes another path.
  toy_request d{{1, 2}, {}, 1235};
  for (int i = 0; i < 40; ++i) d.step(s, params);
  CHECK(d.output != alone.output);
}

TEST_CASE("temperature sampling matches softmax of logits over T by a seeded chi-square test", "[sampler]") {
  const sampler s({});
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, 3.0f};
  sampling_params params;
  params.temperature = 0.7;
  constexpr int num_draws = 20000;
  const auto counts = histogram(s, logits, params, num_draws);
  const auto probs = softmax({1.0 / 0.7, 2.0 / 0.7, 0.5 / 0.7, 3.0 / 0.7});
  // 3 degrees of freedom: P(chi2 > 16.27) = 0.001.
  CHECK(chi_square(counts, probs, num_draws) < 16.27);
  params.temperature = 2.0;  // a flatter distribution must fail the 0.7 expectation
  CHECK(chi_square(histogram(s, logits, params, num_draws), probs, num_draws) > 100.0);
}

TEST_CASE("top_p sampling renormalises over the kept tokens by a seeded chi-square test", "[sampler]") {
  const sampler s({});
  std::vector<float> logits;
  for (double p : {0.15, 0.5, 0.05, 0.3}) logits.push_back(static_cast<float>(std::log(p)));
  sampling_params params;
  params.top_p = 0.75;
  constexpr int num_draws = 20000;
  const auto counts = histogram(s, logits, params, num_draws);
  // 1 degree of freedom: P(chi2 > 10.83) = 0.001.
  CHECK(chi_square(counts, {0.0, 0.625, 0.0, 0.375}, num_draws) < 10.83);
}

TEST_CASE("top_k and min_p restrict the draw", "[sampler]") {
  const sampler s({});
  const std::vector<float> logits = {2.0f, 1.9f, 1.8f, 0.0f, -1.0f};
  sampling_params params;
  params.top_k = 2;
  auto counts = histogram(s, logits, params, 2000);
  CHECK(counts[0] + counts[1] == 2000);
  CHECK(counts[0] > 0);
  CHECK(counts[1] > 0);
  params.top_k = 0;
  params.min_p = 0.5;  // keeps logits >= 2 + ln 0.5 = 1.307
  counts = histogram(s, logits, params, 2000);
  CHECK(counts[0] + counts[1] + counts[2] == 2000);
  CHECK(counts[2] > 0);
}

TEST_CASE("logprobs come from the raw distribution by default", "[sampler]") {
  const sampler s({});
  const std::vector<float> logits = {0.0f, static_cast<float>(std::log(3.0)), -inf, 0.0f};
  sampling_params params;
  params.temperature = 0.0;
  params.logprobs = true;
  params.top_logprobs = 3;
  params.logit_bias = {{0, 10.0f}};  // changes the pick, not the reported (raw) logprobs
  const auto result = s.sample(logits, params, state_of({0}, {}));
  CHECK(result.token == 0);
  REQUIRE(result.logprob.has_value());
  CHECK(*result.logprob == Approx(std::log(1.0 / 5.0)));
  REQUIRE(result.top_logprobs.size() == 3);
  CHECK(result.top_logprobs[0].id == 1);
  CHECK(result.top_logprobs[0].logprob == Approx(std::log(3.0 / 5.0)));
  CHECK(result.top_logprobs[1].id == 0);  // tie with id 3: lower id first
  CHECK(result.top_logprobs[2].id == 3);
  params.logprobs = false;
  params.top_logprobs = 0;
  const auto quiet = s.sample(logits, params, state_of({0}, {}));
  CHECK_FALSE(quiet.logprob.has_value());
  CHECK(quiet.top_logprobs.empty());
}

TEST_CASE("processed logprobs reflect the transforms", "[sampler]") {
  const sampler s({}, logprobs_source::processed);
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  sampling_params params;
  params.temperature = 0.5;
  params.top_k = 2;
  params.logprobs = true;
  params.top_logprobs = 20;  // more than the vocabulary: clamped to 3
  const auto result = s.sample(logits, params, state_of({0}, {}, 5));
  const auto probs = softmax({2.0, 4.0});
  REQUIRE(result.top_logprobs.size() == 3);
  CHECK(result.top_logprobs[0].id == 2);
  CHECK(result.top_logprobs[0].logprob == Approx(std::log(probs[1])));
  CHECK(result.top_logprobs[1].logprob == Approx(std::log(probs[0])));
  CHECK(result.top_logprobs[2].logprob == -inf);  // removed by top_k
}

}  // namespace glm4::engine
