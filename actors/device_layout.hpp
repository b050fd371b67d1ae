// From the ranks of a sharded model to the device actors' executors: one local_executor (KV
// pages, sampler) per rank, and for ranks with peers the hook that aborts their stage's
// collectives when the rank's actor goes down. Ranks built without a group (the layout's group
// factory made none) join theirs at start through their actors (device_slot::joins_group).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "actors/local_runtime.hpp"
#include "model/sharded_layout.hpp"

namespace glm4::actors {

/// KV bytes rank `rank` of stage `stage` may fill: configured, or measured once its weights are in.
using kv_budget_of = std::function<std::uint64_t(std::size_t stage, std::int64_t rank)>;

/// Every rank reports its budget and allocates the pool the scheduler sizes from all the reports
/// (the same block ids everywhere, each rank holding its own layers and KV heads of them). The
/// ranks must outlive the runtime.
device_layout make_device_layout(std::vector<std::vector<model::rank_model>>& ranks, const kv_budget_of& kv_budget,
                                 std::int32_t block_size, const std::vector<engine::token_id>& eos_token_ids);
/// Every rank's cache is num_blocks blocks from the start (and that is what it reports).
device_layout make_device_layout(std::vector<std::vector<model::rank_model>>& ranks, std::int64_t num_blocks,
                                 std::int32_t block_size, const std::vector<engine::token_id>& eos_token_ids);

/// "cpu (2 threads)", "layers 0..2 on 2 x cpu (1 threads) -> layers 2..4 on 2 x cpu (1 threads)":
/// how errors and logs name a layout.
std::string describe_layout(const std::vector<std::vector<model::rank_model>>& ranks);

}  // namespace glm4::actors
