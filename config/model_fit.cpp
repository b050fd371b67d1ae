// The checks that need the model's counts: tensor-parallel sizes against the heads, layer
// ranges against the layer count.
#include <stdexcept>
#include <string>

#include "config/cluster_config.hpp"

namespace glm4::config {
namespace {

std::string range_text(std::int64_t begin, std::int64_t end) { return std::to_string(begin) + ".." + std::to_string(end); }

bool tp_fits(std::int64_t tp, const model_shape& shape) {
  // KV heads split evenly over the ranks, or each rank holds a replica of one KV head.
  return shape.num_heads % tp == 0 && (shape.num_kv_heads % tp == 0 || tp % shape.num_kv_heads == 0);
}

std::string fitting_sizes(const model_shape& shape) {
  std::string sizes;
  for (std::int64_t tp = 1; tp <= shape.num_heads; ++tp) {
    if (!tp_fits(tp, shape)) continue;
    if (!sizes.empty()) sizes += ", ";
    sizes += std::to_string(tp);
  }
  return sizes;
}

}  // namespace

std::vector<layer_range> resolve_for_model(const cluster_config& config, const model_shape& shape) {
  if (shape.num_layers <= 0 || shape.num_heads <= 0 || shape.num_kv_heads <= 0 || shape.num_heads % shape.num_kv_heads != 0)
    throw std::invalid_argument("resolve_for_model: inconsistent model shape");
  const auto& stages = config.stages;
  auto fail = [&](std::size_t index, source_position where, const char* key, const std::string& message) {
    throw config_error(config.file, where, "stage[" + std::to_string(index) + "]." + key, message);
  };
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const std::int64_t tp = stages[i].tp_size();
    if (shape.num_heads % tp != 0)
      fail(i, stages[i].devices_at, "devices",
           "tensor-parallel size " + std::to_string(tp) + " does not divide the model's " + std::to_string(shape.num_heads) +
               " attention heads (a stage may have " + fitting_sizes(shape) + " devices)");
    if (!tp_fits(tp, shape))
      fail(i, stages[i].devices_at, "devices",
           "tensor-parallel size " + std::to_string(tp) + " and the model's " + std::to_string(shape.num_kv_heads) +
               " KV heads: one must divide the other (a stage may have " + fitting_sizes(shape) + " devices)");
  }

  std::vector<layer_range> ranges;
  if (stages.empty()) return {{0, shape.num_layers}};
  if (!stages[0].layers) {
    const auto num_stages = static_cast<std::int64_t>(stages.size());
    if (num_stages > shape.num_layers)
      fail(stages.size() - 1, stages.back().at, "layers",
           std::to_string(num_stages) + " stages for a model of " + std::to_string(shape.num_layers) +
               " layers; a stage needs at least one");
    for (std::int64_t s = 0; s < num_stages; ++s)
      ranges.push_back({s * shape.num_layers / num_stages, (s + 1) * shape.num_layers / num_stages});
    return ranges;
  }
  // The parser has checked that the ranges start at 0 and tile without overlap or gap.
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const layer_range range = *stages[i].layers;
    if (range.end > shape.num_layers)
      fail(i, stages[i].layers_at, "layers",
           "layers " + range_text(range.begin, range.end) + " pass the model's last layer (it has " +
               std::to_string(shape.num_layers) + " layers: 0.." + std::to_string(shape.num_layers) + ")");
    ranges.push_back(range);
  }
  if (ranges.back().end < shape.num_layers)
    fail(stages.size() - 1, stages.back().layers_at, "layers",
         "layers " + range_text(ranges.back().end, shape.num_layers) + " are in no stage (the model has " +
             std::to_string(shape.num_layers) + " layers)");
  return ranges;
}

}  // namespace glm4::config
