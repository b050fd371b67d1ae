// Validation of sampling_params: every bad value is rejected with the parameter named.
#include "engine/sampling_params.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>

namespace glm4::engine {
namespace {

constexpr std::int64_t vocab_size = 100;

param_error expect_error(const std::function<void(sampling_params&)>& change) {
  sampling_params params;
  change(params);
  const auto error = params.validate(vocab_size);
  REQUIRE(error.has_value());
  return *error;
}

}  // namespace

TEST_CASE("default sampling_params are valid", "[sampling_params]") {
  CHECK_FALSE(sampling_params{}.validate(vocab_size).has_value());
  CHECK_FALSE(sampling_params{}.is_greedy());
}

TEST_CASE("boundary values are accepted", "[sampling_params]") {
  sampling_params params;
  params.temperature = 0.0;
  params.top_p = 1.0;
  params.min_p = 1.0;
  params.presence_penalty = -2.0;
  params.frequency_penalty = 2.0;
  params.logit_bias = {{0, -100.0f}, {99, 100.0f}};
  params.stop_token_ids = {0, 99};
  params.max_tokens = 1;
  params.min_tokens = 1;
  params.logprobs = true;
  params.top_logprobs = 20;
  params.n = 128;
  CHECK_FALSE(params.validate(vocab_size).has_value());
  CHECK(params.is_greedy());
}

TEST_CASE("the error names the parameter and the allowed range", "[sampling_params]") {
  const auto error = expect_error([](auto& p) { p.top_p = 1.5; });
  CHECK(error.param == "top_p");
  CHECK(error.message == "top_p must be in (0, 1], got 1.5");
}

TEST_CASE("each out-of-range parameter is rejected by name", "[sampling_params]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct bad_case {
    const char* param;
    std::function<void(sampling_params&)> change;
  };
  const std::vector<bad_case> cases = {
      {"temperature", [](auto& p) { p.temperature = -0.1; }},
      {"temperature", [&](auto& p) { p.temperature = nan; }},
      {"temperature", [](auto& p) { p.temperature = std::numeric_limits<double>::infinity(); }},
      {"top_k", [](auto& p) { p.top_k = -1; }},
      {"top_p", [](auto& p) { p.top_p = 0.0; }},
      {"top_p", [&](auto& p) { p.top_p = nan; }},
      {"min_p", [](auto& p) { p.min_p = 1.01; }},
      {"min_p", [](auto& p) { p.min_p = -0.5; }},
      {"repetition_penalty", [](auto& p) { p.repetition_penalty = 0.0; }},
      {"presence_penalty", [](auto& p) { p.presence_penalty = 2.5; }},
      {"frequency_penalty", [](auto& p) { p.frequency_penalty = -2.01; }},
      {"logit_bias", [](auto& p) { p.logit_bias = {{100, 1.0f}}; }},
      {"logit_bias", [](auto& p) { p.logit_bias = {{-1, 1.0f}}; }},
      {"logit_bias", [](auto& p) { p.logit_bias = {{3, 100.5f}}; }},
      {"stop_token_ids", [](auto& p) { p.stop_token_ids = {5, 100}; }},
      {"stop", [](auto& p) { p.stop = {"ok", ""}; }},
      {"max_tokens", [](auto& p) { p.max_tokens = 0; }},
      {"min_tokens", [](auto& p) { p.min_tokens = -1; }},
      {"min_tokens", [](auto& p) { p.max_tokens = 4; p.min_tokens = 5; }},
      {"top_logprobs", [](auto& p) { p.logprobs = true; p.top_logprobs = 21; }},
      {"top_logprobs", [](auto& p) { p.top_logprobs = 2; }},
      {"n", [](auto& p) { p.n = 0; }},
      {"n", [](auto& p) { p.n = 129; }},
  };
  for (const auto& bad : cases) {
    const auto error = expect_error(bad.change);
    INFO(error.message);
    CHECK(error.param == bad.param);
    CHECK(error.message.rfind(bad.param, 0) == 0);
  }
}

TEST_CASE("token id errors state the vocabulary range", "[sampling_params]") {
  const auto error = expect_error([](auto& p) { p.stop_token_ids = {100}; });
  CHECK(error.message == "stop_token_ids must hold token ids in [0, 100), got 100");
}

TEST_CASE("resolve_seed keeps a given seed and child seeds differ", "[sampling_params]") {
  sampling_params params;
  params.seed = 1234;
  CHECK(resolve_seed(params) == 1234);
  CHECK(child_seed(1234, 0) == 1234);
  CHECK(child_seed(1234, 3) == 1237);
}

}  // namespace glm4::engine
