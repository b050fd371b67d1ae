// CUDA sample_rows vs the CPU backend's (which tests/engine/device_sampling_test.cpp holds to
// engine::sampler): the same token for every row, over vocabulary sizes up to GLM-4's, heavy
// ties, non-finite logits, every filter and token edits.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <utility>

#include "kernels/cuda/cuda_backend.hpp"
#include "tests/kernels/cuda/gpu_test_support.hpp"

namespace glm4::test {
namespace {

using kernels::row_sampling_spec;
using kernels::token_edit;

constexpr float inf = std::numeric_limits<float>::infinity();

struct sampling_rows {
  std::vector<float> logits;  // (R, V)
  std::vector<row_sampling_spec> specs;
  std::vector<token_edit> edits;
};

std::vector<float> random_row(std::mt19937& rng, std::int64_t vocab, int shape) {
  std::vector<float> row(static_cast<std::size_t>(vocab));
  std::normal_distribution<float> normal(0.0f, shape == 0 ? 2.0f : 12.0f);
  for (float& x : row) x = shape == 2 ? static_cast<float>(rng() % 4) : shape == 3 ? 0.0f : normal(rng);
  if (shape == 4) {
    row[rng() % row.size()] = std::numeric_limits<float>::quiet_NaN();
    row[rng() % row.size()] = inf;
    row[rng() % row.size()] = -0.0f;
  }
  if (shape == 5)
    for (float& x : row) x = -inf;
  return row;
}

row_sampling_spec random_spec(std::mt19937& rng, std::int64_t vocab, std::vector<token_edit>& edits) {
  auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };
  auto real = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  row_sampling_spec spec;
  spec.greedy = chance(0.25) ? 1 : 0;
  spec.temperature = real(0.1, 2.0);
  if (chance(0.4)) spec.top_k = static_cast<std::int32_t>(1 + rng() % static_cast<std::uint32_t>(vocab + 1));
  if (chance(0.5)) spec.top_p = real(0.05, 1.0);
  if (chance(0.3)) spec.min_p = real(0.0, 0.3);
  spec.repetition_penalty = chance(0.3) ? real(0.5, 2.0) : 1.0;
  spec.presence_penalty = chance(0.3) ? real(-2.0, 2.0) : 0.0;
  spec.frequency_penalty = chance(0.3) ? real(-2.0, 2.0) : 0.0;
  spec.uniform = real(0.0, 1.0);
  spec.first_edit = static_cast<std::int32_t>(edits.size());
  const std::int64_t num_edits = chance(0.5) ? static_cast<std::int64_t>(rng() % 64) : 0;
  for (std::int64_t e = 0; e < std::min(num_edits, vocab); ++e) {  // distinct ids: a stride walk
    token_edit edit;
    edit.id = static_cast<std::int32_t>((e * 7919) % vocab);
    edit.bias = chance(0.3) ? static_cast<float>(real(-20.0, 20.0)) : 0.0f;
    edit.masked = chance(0.1) ? 1 : 0;
    edit.seen = chance(0.7) ? 1 : 0;
    edit.output_count = static_cast<std::int32_t>(rng() % 3);
    if (e > 0 && edit.id == edits[static_cast<std::size_t>(spec.first_edit)].id) break;
    edits.push_back(edit);
  }
  spec.num_edits = static_cast<std::int32_t>(edits.size()) - spec.first_edit;
  return spec;
}

std::vector<std::int32_t> sample(kernels::backend& backend, const sampling_rows& rows, std::int64_t vocab) {
  const auto num_rows = static_cast<std::int64_t>(rows.specs.size());
  kernels::tensor logits = backend.alloc(kernels::dtype::f32, {num_rows, vocab});
  backend.upload(logits, rows.logits.data());
  std::vector<std::int32_t> ids(rows.specs.size(), -1);
  backend.sample_rows(ids, logits, rows.specs, rows.edits);
  return ids;
}

}  // namespace

TEST_CASE("cuda sample_rows picks the CPU backend's tokens", "[cuda][sampling]") {
  if (!have_gpu_or_skip()) return;
  const std::int64_t vocab = GENERATE(as<std::int64_t>{}, 1, 7, 1000, 32000, 151552);
  CAPTURE(vocab);
  std::mt19937 rng(static_cast<std::uint32_t>(vocab));
  auto cpu = kernels::make_cpu_backend(0);
  auto gpu = kernels::make_cuda_backend(0);
  for (int batch = 0; batch < 8; ++batch) {
    sampling_rows rows;
    const int num_rows = batch == 0 ? 1 : 48;
    for (int r = 0; r < num_rows; ++r) {
      const auto row = random_row(rng, vocab, static_cast<int>(rng() % 6));
      rows.logits.insert(rows.logits.end(), row.begin(), row.end());
      rows.specs.push_back(random_spec(rng, vocab, rows.edits));
    }
    const auto want = sample(*cpu, rows, vocab);
    const auto got = sample(*gpu, rows, vocab);
    for (std::size_t r = 0; r < rows.specs.size(); ++r) {
      const row_sampling_spec& s = rows.specs[r];
      INFO("batch " << batch << " row " << r << ": greedy=" << int{s.greedy} << " T=" << s.temperature << " top_k="
                    << s.top_k << " top_p=" << s.top_p << " min_p=" << s.min_p << " edits=" << s.num_edits
                    << " u=" << s.uniform);
      CHECK(got[r] == want[r]);
    }
  }
}

TEST_CASE("cuda row_logprobs ranks the CPU backend's tokens with its logprobs", "[cuda][sampling]") {
  if (!have_gpu_or_skip()) return;
  const std::int64_t vocab = GENERATE(as<std::int64_t>{}, 1, 7, 1000, 151552);
  CAPTURE(vocab);
  std::mt19937 rng(static_cast<std::uint32_t>(vocab) + 1);
  auto cpu = kernels::make_cpu_backend(0);
  auto gpu = kernels::make_cuda_backend(0);
  const int num_rows = 24;
  std::vector<float> host_logits;
  for (int r = 0; r < num_rows; ++r) {
    const auto row = random_row(rng, vocab, r % 6);  // every shape: ties, NaN and infinities, no finite value
    host_logits.insert(host_logits.end(), row.begin(), row.end());
  }
  std::vector<kernels::logprob_request> requests;
  for (int r = 0; r < num_rows; ++r)
    requests.push_back({r, static_cast<std::int32_t>(rng() % static_cast<std::uint32_t>(vocab))});
  requests.push_back({3, 0});  // a row asked for twice
  for (const std::int32_t top : {0, 5, 20}) {
    if (top > vocab) continue;
    CAPTURE(top);
    const auto run = [&](kernels::backend& backend) {
      kernels::tensor logits = backend.alloc(kernels::dtype::f32, {num_rows, vocab});
      backend.upload(logits, host_logits.data());
      std::pair<std::vector<float>, std::vector<kernels::ranked_logprob>> out;
      out.first.resize(requests.size());
      out.second.resize(requests.size() * static_cast<std::size_t>(top));
      backend.row_logprobs(logits, requests, top, out.first, out.second);
      return out;
    };
    const auto [want_chosen, want_ranked] = run(*cpu);
    const auto [got_chosen, got_ranked] = run(*gpu);
    // The sums run in another order: the same within rounding, or both -inf.
    const auto close = [](float got, float want) { return got == want || std::fabs(got - want) <= 1e-5f; };
    for (std::size_t i = 0; i < requests.size(); ++i) {
      INFO("request " << i << " (row " << requests[i].row << ", chose " << requests[i].chosen << "): got "
                      << got_chosen[i] << ", want " << want_chosen[i]);
      CHECK(close(got_chosen[i], want_chosen[i]));
    }
    for (std::size_t k = 0; k < want_ranked.size(); ++k) {
      INFO("request " << k / static_cast<std::size_t>(std::max(top, 1)) << " rank " << k % static_cast<std::size_t>(std::max(top, 1))
                      << ": got id " << got_ranked[k].id << " (" << got_ranked[k].logprob << "), want id "
                      << want_ranked[k].id << " (" << want_ranked[k].logprob << ")");
      CHECK(got_ranked[k].id == want_ranked[k].id);
      CHECK(close(got_ranked[k].logprob, want_ranked[k].logprob));
    }
  }
}

}  // namespace glm4::test
