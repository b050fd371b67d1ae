// Cutting the checkpoint into ranks and wiring each stage's collective group.
#include "model/sharded_layout.hpp"

#include <stdexcept>
#include <string>

namespace glm4::model {

std::vector<index_range> split_layers(std::int64_t num_layers, std::int64_t num_stages) {
  if (num_stages < 1 || num_stages > num_layers)
    throw std::invalid_argument("cannot split " + std::to_string(num_layers) + " layers into " + std::to_string(num_stages) +
                                " pipeline stages");
  std::vector<index_range> ranges;
  for (std::int64_t stage = 0; stage < num_stages; ++stage)
    ranges.push_back({stage * num_layers / num_stages, (stage + 1) * num_layers / num_stages});
  return ranges;
}

std::vector<std::vector<rank_model>> build_sharded_layout(const model_config& config, const model_weights& full,
                                                          const std::vector<stage_shape>& stages,
                                                          const backend_factory& make_backend,
                                                          const group_factory& make_group) {
  std::int64_t next_layer = 0;
  for (const stage_shape& stage : stages) {
    if (stage.layers.begin != next_layer)
      throw std::invalid_argument("pipeline stages must cover the layers in order: a stage starts at layer " +
                                  std::to_string(stage.layers.begin) + ", expected " + std::to_string(next_layer));
    next_layer = stage.layers.end;
  }
  if (stages.empty() || next_layer != config.num_layers)
    throw std::invalid_argument("pipeline stages cover layers 0.." + std::to_string(next_layer) + " of the model's " +
                                std::to_string(config.num_layers));

  std::vector<std::vector<rank_model>> ranks(stages.size());
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const stage_shape& stage = stages[s];
    std::vector<kernels::backend*> backends;
    for (std::int64_t r = 0; r < stage.tp_size; ++r) {
      rank_model& rank = ranks[s].emplace_back();
      rank.backend = make_backend(s, r);
      backends.push_back(rank.backend.get());
    }
    std::vector<std::shared_ptr<kernels::comm::communicator>> group;
    if (stage.tp_size > 1)
      group = make_group ? make_group(s, backends) : kernels::comm::make_shared_memory_group(static_cast<int>(stage.tp_size));
    for (std::int64_t r = 0; r < stage.tp_size; ++r) {
      rank_model& rank = ranks[s][static_cast<std::size_t>(r)];
      rank.plan = make_shard_plan(config, stage.tp_size, r, stage.layers);
      rank.weights = shard_weights(full, config, rank.plan);
      if (!group.empty()) rank.tensor_parallel = group[static_cast<std::size_t>(r)];
      rank.model = std::make_unique<glm4_model>(config, rank.plan, rank.weights, *rank.backend, rank.tensor_parallel);
    }
  }
  return ranks;
}

}  // namespace glm4::model
