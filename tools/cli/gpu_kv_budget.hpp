// How much of a GPU the KV pool may take, one rule for serve (after the weights are loaded) and
// doctor --config (before): total memory x gpu_memory_utilization, less what is in use, less the
// weights still to load, less what the largest step needs besides (gpu_step_reserve).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/model_config.hpp"
#include "model/shard_plan.hpp"

namespace glm4::cli {

struct gpu_kv_budget {
  std::uint64_t total_bytes = 0;
  std::uint64_t in_use_bytes = 0;
  std::optional<std::uint64_t> kv_bytes;  // none: nothing is left for the KV cache
};

/// What a rank needs on its GPU for steps of up to max_num_batched_tokens tokens (or a decode step
/// padded to a power of two of max_num_seqs rows, if more) over max_num_seqs sequences, besides
/// weights and KV: the model's activations (model::activation_bytes), the F16/BF16 copy of
/// a GEMM's input, the rows sample_rows filters (and a tp rank 0's staging of its peers' logits),
/// and margins for what CUDA and cuBLAS allocate themselves (256 MiB) and, for tp > 1, NCCL's
/// buffers (512 MiB: the group is made after the plan). The margins are estimates, owed a GPU check. Pure arithmetic: every build has it.
std::uint64_t gpu_step_reserve(const model::model_config& config, const model::shard_plan& plan,
                               std::int64_t max_num_batched_tokens, std::int64_t max_num_seqs);

/// Why `what` (the weights and largest steps of the ranks on a GPU, and any kv_cache_bytes they
/// are configured with), needing `needed_bytes`, cannot fit a GPU with total_bytes, free_bytes of
/// them free; nullopt when it fits. Ranks whose KV budget comes from gpu_memory_utilization may
/// fill that share of the GPU less what is in use, and must leave some room for KV; with no
/// utilization (every rank's kv_cache_bytes configured) the bound is the free memory. `device`
/// names the GPU in the message. Pure arithmetic, so serve can say so before it loads anything
/// (instead of a bare cudaMalloc failure midway).
std::optional<std::string> gpu_misfit(const std::string& device, const std::string& what, std::uint64_t total_bytes,
                                      std::uint64_t free_bytes, std::optional<double> utilization,
                                      std::uint64_t needed_bytes);

/// Queries GPU `index`; `weights_to_load` is 0 once they are on the device; `step_reserve` comes
/// from gpu_step_reserve. Throws std::runtime_error in a build without CUDA.
gpu_kv_budget plan_gpu_kv_budget(int index, double utilization, std::uint64_t weights_to_load, std::uint64_t step_reserve);

}  // namespace glm4::cli
