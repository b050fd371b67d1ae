// row_logprobs on the CPU against a double-precision reference: the chosen token's log-softmax and
// the most likely tokens (ties ranked by id) over rows with ties, NaN, infinities and no finite
// value; and the argument checks the CUDA backend shares.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "kernels/cpu/cpu_ops.hpp"
#include "tests/kernels/op_test_support.hpp"

namespace glm4::test {
namespace {

using kernels::logprob_request;
using kernels::ranked_logprob;

constexpr float inf = std::numeric_limits<float>::infinity();

// NaN as -inf, +inf as the largest float: as the sampler reads logits.
double sanitized(float x) {
  if (std::isnan(x)) return -inf;
  if (x == inf) return std::numeric_limits<float>::max();
  return x;
}

struct reference_row {
  std::vector<double> logprobs;
  std::vector<std::int32_t> ranking;  // every id, most likely first, lowest id on ties
};

reference_row reference(const float* row, std::int64_t vocab) {
  reference_row out;
  std::vector<double> x(static_cast<std::size_t>(vocab));
  for (std::int64_t v = 0; v < vocab; ++v) x[static_cast<std::size_t>(v)] = sanitized(row[v]);
  const double best = *std::max_element(x.begin(), x.end());
  double total = 0.0;
  for (double value : x) total += best == -inf ? 0.0 : std::exp(value - best);
  for (double value : x) out.logprobs.push_back(best == -inf ? -inf : value - best - std::log(total));
  out.ranking.resize(x.size());
  std::iota(out.ranking.begin(), out.ranking.end(), 0);
  std::stable_sort(out.ranking.begin(), out.ranking.end(),
                   [&](std::int32_t a, std::int32_t b) { return x[static_cast<std::size_t>(a)] > x[static_cast<std::size_t>(b)]; });
  return out;
}

bool close(double got, double want) { return got == want || std::fabs(got - want) <= 1e-5 + 1e-6 * std::fabs(want); }

std::vector<float> rows_of_every_shape(std::mt19937& rng, std::int64_t vocab) {
  std::vector<float> logits;
  std::normal_distribution<float> normal(0.0f, 6.0f);
  for (int shape = 0; shape < 5; ++shape)
    for (std::int64_t v = 0; v < vocab; ++v) {
      switch (shape) {
        case 0: logits.push_back(normal(rng)); break;
        case 1: logits.push_back(static_cast<float>(rng() % 3)); break;  // heavy ties
        case 2: logits.push_back(v % 5 == 0 ? std::numeric_limits<float>::quiet_NaN() : v % 7 == 0 ? inf : -inf); break;
        case 3: logits.push_back(-inf); break;  // no finite value
        default: logits.push_back(v == vocab / 2 ? 80.0f : -80.0f);  // one token takes it all
      }
    }
  return logits;
}

}  // namespace

TEST_CASE("row_logprobs gives the chosen token's log-softmax and the most likely tokens", "[kernels][row_logprobs]") {
  auto backend = kernels::make_cpu_backend(2);
  for (const std::int64_t vocab : {1, 20, 1000}) {
    std::mt19937 rng(static_cast<std::uint32_t>(vocab));
    const std::vector<float> logits = rows_of_every_shape(rng, vocab);
    const std::int64_t num_rows = static_cast<std::int64_t>(logits.size()) / vocab;
    const host_tensor device = float_tensor(kernels::dtype::f32, {num_rows, vocab}, logits);
    for (const std::int32_t top : {0, 1, 5, 20}) {
      if (top > vocab) continue;
      CAPTURE(vocab, top);
      std::vector<logprob_request> requests;
      for (std::int64_t r = 0; r < num_rows; ++r)
        requests.push_back({static_cast<std::int32_t>(r), static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(vocab))});
      requests.push_back({0, 0});  // a row asked for twice
      std::vector<float> chosen(requests.size());
      std::vector<ranked_logprob> ranked(requests.size() * static_cast<std::size_t>(top));
      backend->row_logprobs(device.view, requests, top, chosen, ranked);
      for (std::size_t i = 0; i < requests.size(); ++i) {
        CAPTURE(i, requests[i].row);
        const reference_row want = reference(logits.data() + requests[i].row * vocab, vocab);
        CHECK(close(chosen[i], want.logprobs[static_cast<std::size_t>(requests[i].chosen)]));
        for (std::int32_t j = 0; j < top; ++j) {
          CAPTURE(j);
          const ranked_logprob& got = ranked[i * static_cast<std::size_t>(top) + static_cast<std::size_t>(j)];
          const std::int32_t want_id = want.ranking[static_cast<std::size_t>(j)];
          CHECK(got.id == want_id);
          CHECK(close(got.logprob, want.logprobs[static_cast<std::size_t>(want_id)]));
        }
      }
    }
  }
}

TEST_CASE("row_logprobs refuses requests outside the logits and more ranks than it keeps", "[kernels][row_logprobs]") {
  auto backend = kernels::make_cpu_backend(1);
  const host_tensor logits = float_tensor(kernels::dtype::f32, {2, 30}, std::vector<float>(60, 0.5f));
  std::vector<float> chosen(1);
  std::vector<ranked_logprob> ranked(5);
  const auto call = [&](logprob_request request, std::int32_t top) {
    backend->row_logprobs(logits.view, std::span(&request, 1), top, chosen,
                          std::span(ranked.data(), static_cast<std::size_t>(top)));
  };
  CHECK_NOTHROW(call({1, 29}, 5));
  CHECK_THROWS_WITH(call({2, 0}, 5), Catch::Contains("names row 2 of 2"));
  CHECK_THROWS_WITH(call({0, 30}, 5), Catch::Contains("chose token 30 of 30"));
  CHECK_THROWS_WITH(call({0, -1}, 5), Catch::Contains("chose token -1"));
  ranked.resize(21);
  CHECK_THROWS_WITH(call({0, 0}, 21), Catch::Contains("top 21 is outside [0, 20]"));
  std::vector<ranked_logprob> too_few(4);
  logprob_request request{0, 0};
  CHECK_THROWS_WITH(backend->row_logprobs(logits.view, std::span(&request, 1), 5, chosen, too_few),
                    Catch::Contains("top ranked entries per request"));
}

}  // namespace glm4::test
