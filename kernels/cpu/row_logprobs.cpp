// Raw logprobs of sampled rows on the CPU, computed as engine::sampler computes them (the sum of
// exp(x - max) in double, in id order), so that the two agree to the bit; the CUDA kernel is held
// to this within rounding.
#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_ops.hpp"
#include "kernels/sampling_spec.hpp"

namespace glm4::kernels::cpu {

using namespace sampling_math;

void expect_logprob_args(const tensor& logits, std::span<const logprob_request> requests, std::int32_t top,
                         std::span<float> chosen, std::span<ranked_logprob> ranked) {
  const auto fail = [](const std::string& what) { throw std::invalid_argument("row_logprobs: " + what); };
  expect_rank(logits, dtype::f32, 2, "row_logprobs logits");
  const std::int64_t num_rows = logits.dim(0), vocab = logits.dim(1);
  const std::int64_t most = std::min<std::int64_t>(vocab, max_ranked_logprobs);
  if (top < 0 || top > most) fail("top " + std::to_string(top) + " is outside [0, " + std::to_string(most) + "]");
  if (chosen.size() != requests.size()) fail("one chosen logprob per request is needed");
  if (ranked.size() != requests.size() * static_cast<std::size_t>(top))
    fail("top ranked entries per request are needed");
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].row < 0 || requests[i].row >= num_rows)
      fail("request " + std::to_string(i) + " names row " + std::to_string(requests[i].row) + " of " +
           std::to_string(num_rows));
    if (requests[i].chosen < 0 || requests[i].chosen >= vocab)
      fail("request " + std::to_string(i) + " chose token " + std::to_string(requests[i].chosen) + " of " +
           std::to_string(vocab));
  }
}

void row_logprobs(const tensor& logits, std::span<const logprob_request> requests, std::int32_t top,
                  std::span<float> chosen, std::span<ranked_logprob> ranked, int num_threads) {
  expect_logprob_args(logits, requests, top, chosen, ranked);
  const std::int64_t vocab = logits.dim(1);
  const auto num_requests = static_cast<std::int64_t>(requests.size());
#pragma omp parallel for schedule(dynamic) num_threads(num_threads) if (num_requests > 1)
  for (std::int64_t i = 0; i < num_requests; ++i) {
    const logprob_request& request = requests[static_cast<std::size_t>(i)];
    const float* row = logits.as<float>() + request.row * vocab;
    float best = negative_infinity();
    for (std::int64_t v = 0; v < vocab; ++v)
      if (const float x = sanitized(row[v]); x > best) best = x;
    double total = 0.0;
    if (best != negative_infinity())
      for (std::int64_t v = 0; v < vocab; ++v) total += weight_of(sanitized(row[v]), best);
    const double log_total = std::log(total);
    chosen[static_cast<std::size_t>(i)] = logprob_of(sanitized(row[request.chosen]), best, log_total);

    std::array<ranked_candidate, max_ranked_logprobs> best_ranked;
    std::int32_t count = 0;
    for (std::int32_t v = 0; v < vocab; ++v) offer_to_ranking(best_ranked.data(), count, top, {sanitized(row[v]), v});
    for (std::int32_t r = 0; r < top; ++r)
      ranked[static_cast<std::size_t>(i * top + r)] = {best_ranked[static_cast<std::size_t>(r)].id,
                                                        logprob_of(best_ranked[static_cast<std::size_t>(r)].value, best,
                                                                   log_total)};
  }
}

}  // namespace glm4::kernels::cpu
