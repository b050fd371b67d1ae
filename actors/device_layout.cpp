#include "actors/device_layout.hpp"

#include "engine/local_executor.hpp"

namespace glm4::actors {
namespace {

using executor_of = std::function<std::shared_ptr<engine::step_executor>(model::rank_model&, std::size_t stage, std::int64_t rank)>;

device_layout make_slots(std::vector<std::vector<model::rank_model>>& ranks, const executor_of& make_executor) {
  device_layout layout;
  for (std::size_t s = 0; s < ranks.size(); ++s) {
    auto& slots = layout.emplace_back();
    for (model::rank_model& rank : ranks[s]) {
      device_slot slot;
      slot.executor = make_executor(rank, s, std::ssize(slots));
      if (rank.plan.tp_size > 1) {
        // The group the rank joins at start (joins_group) exists only once it has joined.
        slot.abort_peers = [model = rank.model.get()](const std::string& why) {
          if (kernels::comm::communicator* group = model->tensor_parallel()) group->abort(why);
        };
        slot.joins_group = !rank.tensor_parallel;
      }
      slots.push_back(std::move(slot));
    }
  }
  return layout;
}

}  // namespace

device_layout make_device_layout(std::vector<std::vector<model::rank_model>>& ranks, const kv_budget_of& kv_budget,
                                 std::int32_t block_size, const std::vector<engine::token_id>& eos_token_ids) {
  return make_slots(ranks, [&](model::rank_model& rank, std::size_t s, std::int64_t r) {
    return std::make_shared<engine::local_executor>(*rank.model, engine::kv_budget{kv_budget(s, r)}, block_size, eos_token_ids);
  });
}

device_layout make_device_layout(std::vector<std::vector<model::rank_model>>& ranks, std::int64_t num_blocks,
                                 std::int32_t block_size, const std::vector<engine::token_id>& eos_token_ids) {
  return make_slots(ranks, [&](model::rank_model& rank, std::size_t, std::int64_t) {
    return std::make_shared<engine::local_executor>(*rank.model, num_blocks, block_size, eos_token_ids);
  });
}

std::string describe_layout(const std::vector<std::vector<model::rank_model>>& ranks) {
  if (ranks.size() == 1 && ranks[0].size() == 1) return ranks[0][0].backend->name();
  std::string text;
  for (const auto& stage : ranks) {
    if (!text.empty()) text += " -> ";
    const model::index_range layers = stage.front().plan.layers;
    text += "layers " + std::to_string(layers.begin) + ".." + std::to_string(layers.end) + " on " + std::to_string(stage.size()) +
            " x " + stage.front().backend->name();
  }
  return text;
}

}  // namespace glm4::actors
