// A model laid over pipeline stages of tensor-parallel ranks: every rank's shard of the weights,
// its backend and its glm4_model, with one shared-memory collective group per stage. Ranks that
// run in one process (CPU ranks, or one GPU per stage) are built here; who drives them (threads
// in tests, device actors when serving) is the caller's business.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/backend.hpp"
#include "model/glm4_model.hpp"
#include "model/shard_plan.hpp"

namespace glm4::model {

/// One pipeline stage: its contiguous layers and how many tensor-parallel ranks share them.
struct stage_shape {
  index_range layers;
  std::int64_t tp_size = 1;
};

struct rank_model {
  shard_plan plan;
  model_weights weights;                       // the shard's host tensors (copied column slices live here)
  std::unique_ptr<kernels::backend> backend;
  std::unique_ptr<glm4_model> model;
  std::shared_ptr<kernels::comm::communicator> tensor_parallel;  // the stage's group; null when tp is 1
};

/// Makes the backend of rank `rank` of stage `stage`.
using backend_factory = std::function<std::unique_ptr<kernels::backend>(std::size_t stage, std::int64_t rank)>;
/// Makes the collective group of a stage's ranks over their backends (rank r's at index r); it may
/// return none: the ranks then join their group later (glm4_model::join_tensor_parallel), as the
/// device actors of serve do with tickets handed out in messages. No factory: a shared-memory
/// group (CPU ranks).
using group_factory = std::function<std::vector<std::shared_ptr<kernels::comm::communicator>>(
    std::size_t stage, const std::vector<kernels::backend*>& backends)>;

/// ranks[s][r] is rank r of stage s. Throws std::invalid_argument when the stages do not cover
/// the layers 0..L in order, or a stage's tp size does not fit the model (make_shard_plan).
std::vector<std::vector<rank_model>> build_sharded_layout(const model_config& config, const model_weights& full,
                                                          const std::vector<stage_shape>& stages,
                                                          const backend_factory& make_backend,
                                                          const group_factory& make_group = {});

/// `num_stages` contiguous ranges over `num_layers`: stage s gets [s * L / n, (s + 1) * L / n), the
/// split cluster.toml uses when no stage names its layers (config::resolve_for_model).
std::vector<index_range> split_layers(std::int64_t num_layers, std::int64_t num_stages);

}  // namespace glm4::model
