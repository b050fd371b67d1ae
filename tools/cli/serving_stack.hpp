// The in-process serving stack behind `serve`: checkpoint, backend, model, KV pool and engine,
// sized from cluster.toml (or its defaults) for one local device.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>

#include "config/cluster_config.hpp"
#include "engine/llm_engine.hpp"
#include "engine/local_executor.hpp"
#include "kernels/backend.hpp"
#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/glm4_model.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace glm4::cli {

struct serving_stack {
  model::checkpoint checkpoint;
  std::unique_ptr<kernels::backend> backend;
  std::unique_ptr<model::glm4_model> model;
  std::shared_ptr<engine::local_executor> executor;  // the device's side: model, KV pages, sampler
  engine::engine_config engine_config;               // the scheduler's side
  std::int64_t max_model_len = 0;
};

/// Loads the checkpoint and builds everything on the first device of the first stage (the CPU
/// when no stage is given). Prints the memory plan to `log`. Throws std::runtime_error when the
/// KV pool cannot hold one sequence of max_model_len tokens, naming the setting to change.
std::unique_ptr<serving_stack> build_serving_stack(const config::cluster_config& config, const model::tokenizer& tokenizer,
                                                   std::ostream& log);

/// The model length the server advertises before the weights are loaded: the configured one or
/// config.json's max_position_embeddings.
std::int64_t configured_max_model_len(const config::cluster_config& config, const model::model_config& model);

}  // namespace glm4::cli
