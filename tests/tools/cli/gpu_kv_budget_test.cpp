// The GPU memory arithmetic of serve and doctor (tools/cli/gpu_kv_budget): pure, so it runs here.
#include "tools/cli/gpu_kv_budget.hpp"

#include <catch2/catch.hpp>

#include "model/checkpoint/make_model.hpp"

namespace glm4::cli {
namespace {

constexpr std::uint64_t gib = std::uint64_t{1} << 30;

}  // namespace

TEST_CASE("weights and steps that leave no room on a GPU are refused before loading, with what to change",
          "[gpu_kv_budget]") {
  // 24 GiB, 1 GiB in use: 0.9 x 24 - 1 = 20.6 GiB may be filled.
  CHECK_FALSE(gpu_misfit("cuda:0 (X)", "stage 0 rank 0", 24 * gib, 23 * gib, 0.9, 20 * gib));
  const auto why = gpu_misfit("cuda:0 (NVIDIA GeForce RTX 3080)", "the weights and largest step of stage 0 rank 0",
                              10 * gib, 9 * gib, 0.9, 19 * gib);
  REQUIRE(why);
  CHECK_THAT(*why, Catch::StartsWith("cuda:0 (NVIDIA GeForce RTX 3080): the weights and largest step of stage 0 rank 0 need "
                                     "19.00 GiB, but"));
  CHECK_THAT(*why, Catch::Contains("gpu_memory_utilization 0.9 of 10.00 GiB leaves 8.00 GiB (1.00 GiB in use already)"));
  CHECK_THAT(*why, Catch::Contains("more GPUs") && Catch::Contains("raise gpu_memory_utilization"));
  // Exactly full is no fit: nothing would be left for the KV cache.
  CHECK(gpu_misfit("cuda:0", "x", 10 * gib, 10 * gib, 0.5, 5 * gib));
  // More in use than the utilization allows.
  CHECK(gpu_misfit("cuda:0", "x", 10 * gib, 2 * gib, 0.5, 1));
  // Configured KV bytes (no utilization): bounded by the free memory, which they may fill exactly.
  CHECK_FALSE(gpu_misfit("cuda:0", "x", 10 * gib, 9 * gib, std::nullopt, 9 * gib));
  const auto over = gpu_misfit("cuda:0", "x", 10 * gib, 9 * gib, std::nullopt, 9 * gib + 1);
  REQUIRE(over);
  CHECK_THAT(*over, Catch::Contains("only 9.00 GiB of 10.00 GiB is free") && Catch::Contains("lower kv_cache_bytes"));
}

TEST_CASE("a step's reserve grows with the step, and a tensor-parallel rank keeps room for NCCL and its peers' logits",
          "[gpu_kv_budget]") {
  const auto config = model::preset_config("glm-4-9b", model::checkpoint_layout::glm);
  REQUIRE(config);
  const model::shard_plan whole = model::make_shard_plan(*config, 1, 0, {0, config->num_layers});
  const std::uint64_t small = gpu_step_reserve(*config, whole, 512, 64), large = gpu_step_reserve(*config, whole, 8192, 64);
  CHECK(small > 256 * (std::uint64_t{1} << 20));  // at least the margin
  CHECK(large > small);
  // Decode steps padded to 64 rows need as much as 64 batched tokens, however few are configured.
  CHECK(gpu_step_reserve(*config, whole, 1, 64) == gpu_step_reserve(*config, whole, 64, 64));
  const model::shard_plan first = model::make_shard_plan(*config, 2, 0, {0, config->num_layers});
  const model::shard_plan second = model::make_shard_plan(*config, 2, 1, {0, config->num_layers});
  CHECK(gpu_step_reserve(*config, first, 512, 64) > gpu_step_reserve(*config, second, 512, 64));
  CHECK(gpu_step_reserve(*config, second, 512, 64) > 512 * (std::uint64_t{1} << 20));  // NCCL's buffers
}

}  // namespace glm4::cli
