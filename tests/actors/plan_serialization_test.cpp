// A step plan, its results and hidden states survive CAF's binary serialization unchanged: what
// a remote node will receive is what a local device gets now. Every field is set to a value that
// is not its default, so a field missing from an inspect() shows up as a difference.
#include <catch2/catch.hpp>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include "actors/local_runtime.hpp"
#include "actors/messages.hpp"

namespace glm4::actors {
namespace {

template <class T>
T round_trip(caf::actor_system& system, T value) {
  std::vector<char> bytes;
  caf::binary_serializer sink{system, bytes};
  REQUIRE_FALSE(sink(value));
  T loaded;
  caf::binary_deserializer source{system, bytes};
  REQUIRE_FALSE(source(loaded));
  return loaded;
}

step_plan full_plan() {
  step_plan plan;
  model::add_sequence(plan.batch, std::vector<std::int32_t>{5, 6, 7}, 0, std::vector<std::int32_t>{3}, model::logit_rows::all);
  model::add_sequence(plan.batch, std::vector<std::int32_t>{9}, 20, std::vector<std::int32_t>{1, 4}, model::logit_rows::last);
  plan.batch.block_size = 16;
  plan.copies = {{2, 8}, {4, 9}};
  plan.fed = {{3, 1}};
  row_plan row;
  row.params.temperature = 0.7;
  row.params.top_k = 40;
  row.params.top_p = 0.9;
  row.params.min_p = 0.05;
  row.params.repetition_penalty = 1.1;
  row.params.presence_penalty = 0.5;
  row.params.frequency_penalty = -0.25;
  row.params.seed = 1234567890123ull;
  row.params.logit_bias = {{3, -100.0f}, {77, 2.5f}};
  row.params.stop_token_ids = {1, 2};
  row.params.stop = {"END", "\n\n"};
  row.params.max_tokens = 33;
  row.params.min_tokens = 4;
  row.params.ignore_eos = true;
  row.params.logprobs = true;
  row.params.top_logprobs = 5;
  row.params.n = 3;
  row.prompt_token_ids = {5, 6, 7};
  row.output_token_ids = {11, 12};
  row.seed = 42;
  row.num_output_tokens = 2;
  plan.rows.assign(5, row);
  plan.rows[1].params.seed.reset();
  plan.rows[1].params.max_tokens.reset();
  return plan;
}

}  // namespace

TEST_CASE("step plans, results and hidden states round-trip through CAF's binary serializer", "[actors][serialization]") {
  actor_config config;
  caf::actor_system system{config};

  const step_plan plan = full_plan();
  REQUIRE(plan.rows[0].params.seed);
  const step_plan loaded = round_trip(system, plan);
  CHECK(loaded == plan);
  CHECK_FALSE(loaded.rows[1].params.seed);
  CHECK_FALSE(loaded.rows[1].params.max_tokens);
  CHECK(loaded.rows[0].params.seed == 1234567890123ull);

  step_results results(2);
  results[0] = {17, -0.5f, {{17, -0.5f}, {3, -1.25f}}};
  results[1] = {4, std::nullopt, {}};
  CHECK(round_trip(system, results) == results);

  const hidden_states hidden{{0.25f, -1.0f, 3.5f}};
  CHECK(round_trip(system, hidden).values == hidden.values);
}

TEST_CASE("memory reports and the sized pool round-trip too", "[actors][serialization]") {
  actor_config config;
  caf::actor_system system{config};
  const engine::memory_report report{"layers 0..20 rank 1 on cuda:3", 37ull << 30, 1ull << 20};
  CHECK(round_trip(system, report) == report);
  const engine::kv_pool_size pool{12345, 8192, 1ull << 20, "max_model_len lowered"};
  CHECK(round_trip(system, pool) == pool);
  CHECK(caf::has_type_id<engine::memory_report>::value);
  CHECK(caf::has_type_id<engine::kv_pool_size>::value);
}

TEST_CASE("step plans are registered message types", "[actors][serialization]") {
  CHECK(caf::has_type_id<step_plan>::value);
  CHECK(caf::has_type_id<step_results>::value);
  CHECK(caf::has_type_id<hidden_states>::value);
  CHECK(std::string(caf::type_name<step_plan>::value) == "glm4::actors::step_plan");
}

}  // namespace glm4::actors
