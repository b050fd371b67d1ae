// doctor --config: the memory plan of a cluster.toml layout, rank by rank, from shapes alone
// (nothing is loaded): each rank's share of the weights, its KV bytes per token, its KV budget and
// the tokens that fit; the smallest rank decides the pool, as serve sizes it.
#pragma once

#include <iosfwd>

#include "config/cluster_config.hpp"
#include "model/model_config.hpp"

namespace glm4::cli {

/// Throws config::config_error when the layout does not fit the model (as serve would).
void print_layout_plan(const config::cluster_config& config, const model::model_config& model, double gpu_memory_utilization,
                       std::ostream& out);

}  // namespace glm4::cli
