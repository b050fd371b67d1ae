// The in-process serving stack behind `serve` and `generate`: the
// checkpoint cut into the ranks of cluster.toml's stages (one CPU or GPU rank when no stage is
// given), a backend and model per rank with the KV budget each reports, and the engine's config.
// The scheduler actor sizes the pool from those reports when the runtime starts.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/device_layout.hpp"
#include "config/cluster_config.hpp"
#include "engine/llm_engine.hpp"
#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/sharded_layout.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace glm4::cli {

/// KV bytes a CPU rank may fill when its stage sets no kv_cache_bytes.
inline constexpr std::uint64_t default_cpu_kv_bytes = std::uint64_t{4} << 30;

struct serving_stack {
  model::checkpoint checkpoint;
  std::vector<std::vector<model::rank_model>> ranks;  // [stage][tensor-parallel rank]
  std::vector<std::vector<std::uint64_t>> kv_budgets;  // [stage][rank]: KV bytes each rank may fill
  engine::engine_config engine_config;                // num_blocks: the most the pool may take
  bool plan_ahead = false;                            // scheduler_actor_config::plan_ahead (plan_ahead_pays)
  std::string layout;                                 // how logs and errors name the devices
};

/// Loads the checkpoint and builds every rank of every stage of `config` (one stage on the
/// default device when none is given), measuring each GPU rank's KV budget once the weights are
/// in. Throws config::config_error for a layout the model cannot take (with the TOML position)
/// and std::runtime_error when a GPU has no memory left for KV or a stage asks for what this
/// build cannot do.
std::unique_ptr<serving_stack> build_serving_stack(const config::cluster_config& config, const model::tokenizer& tokenizer,
                                                   std::ostream& log);

/// CPU threads each rank of `stage` computes with: num_threads, or the machine's `cores` shared by
/// its ranks (the ranks of a stage compute at the same time; stages take turns).
int cpu_threads_per_rank(const config::stage_config& stage, unsigned cores);

/// Whether planning ahead pays on `stages`, given a machine of `cores` and [scheduler] plan_ahead:
/// as configured, else yes on one stage of GPUs (the host is idle while they compute), or of CPU
/// ranks whose threads leave a core for the scheduler; no when every core computes, since the
/// planning would then take cycles from the step it overlaps.
bool plan_ahead_pays(const config::cluster_config& config, const std::vector<config::stage_config>& stages, unsigned cores);
/// The rule itself, for one stage: yes on GPUs, or when `computing_threads` leave one of `cores` free.
bool plan_ahead_pays(bool on_gpu, unsigned computing_threads, unsigned cores);

/// The device actors' executors: each rank reports its budget from kv_budgets.
actors::device_layout make_serving_layout(serving_stack& stack);

/// The memory plan, once the runtime has sized the pool: weights, the pool, every rank's shard.
void log_memory_plan(const serving_stack& stack, const engine::kv_pool_size& pool, std::ostream& log);

/// The storage type [model] dtype or kv_cache_dtype asks for; nullopt for auto (the checkpoint's
/// own for the weights, model::default_kv_cache_dtype for the KV cache).
std::optional<kernels::dtype> storage_dtype(config::model_dtype dtype);

/// The model length the server advertises before the weights are loaded: the configured one or
/// config.json's max_position_embeddings.
std::int64_t configured_max_model_len(const config::cluster_config& config, const model::model_config& model);

}  // namespace glm4::cli
