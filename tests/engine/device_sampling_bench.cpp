// Hidden micro-benchmark: ./engine_tests "[.bench]"
// The host work of a sampled step with a repetition penalty: 64 rows with 4,096-token prompts
// (over 30,000 ids) and 128 output tokens each, turned into device sampling specs. Side by side:
// prompts as they are (the edits sort them each step) and the distinct sorted ids the engine passes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>

#include "engine/device_sampling.hpp"

namespace glm4::engine {

TEST_CASE("device sampling specs for long prompts with a repetition penalty", "[.bench]") {
  std::mt19937 rng(1);
  std::uniform_int_distribution<token_id> id(0, 151551);
  constexpr int num_rows = 64;
  std::vector<std::vector<token_id>> prompts(num_rows), distinct(num_rows), outputs(num_rows);
  for (int r = 0; r < num_rows; ++r) {
    for (int i = 0; i < 4096; ++i) prompts[r].push_back(id(rng) % 30000);
    for (int i = 0; i < 128; ++i) outputs[r].push_back(id(rng));
    distinct[r] = prompts[r];
    std::sort(distinct[r].begin(), distinct[r].end());
    distinct[r].erase(std::unique(distinct[r].begin(), distinct[r].end()), distinct[r].end());
  }
  sampling_params params;
  params.repetition_penalty = 1.1;
  params.temperature = 0.8;
  const std::vector<token_id> eos{151329};
  double milliseconds[2] = {};
  for (int source = 0; source < 2; ++source) {
    std::vector<row_sampling> rows(num_rows);
    for (int r = 0; r < num_rows; ++r)
      rows[r] = {&params, {source == 0 ? prompts[r] : distinct[r], outputs[r], 1}};
    constexpr int rounds = 20;
    std::size_t edits = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int round = 0; round < rounds; ++round) edits += make_device_sampling_batch(rows, eos).edits.size();
    milliseconds[source] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / rounds;
    std::cout << (source == 0 ? "prompts as they are: " : "distinct sorted ids: ") << milliseconds[source]
              << " ms a step, " << edits / rounds << " edits\n";
  }
  std::cout << "ratio: " << milliseconds[0] / milliseconds[1] << "x\n";
}

}  // namespace glm4::engine
