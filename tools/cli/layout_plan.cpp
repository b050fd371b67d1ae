#include "tools/cli/layout_plan.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <ostream>
#include <string>

#include "model/checkpoint/progress.hpp"
#include "model/kv_cache.hpp"
#include "model/shard_plan.hpp"
#include "tools/cli/gpu_kv_budget.hpp"
#include "tools/cli/serving_stack.hpp"

#ifdef GLM4_HAVE_CUDA
#include "kernels/cuda/device_query.hpp"
#endif

namespace glm4::cli {
namespace {

// What the rank may fill with KV after its weights; nullopt (with the reason in `why`) when it cannot be told here.
std::optional<std::uint64_t> kv_budget(const config::stage_config& stage, const config::device_spec& device,
                                       std::uint64_t weight_bytes, std::uint64_t step_reserve, double utilization,
                                       std::string& why) {
  if (stage.kv_cache_bytes) return *stage.kv_cache_bytes;
  if (device.kind == config::device_kind::cpu) return default_cpu_kv_bytes;
#ifdef GLM4_HAVE_CUDA
  const auto gpus = kernels::cuda::query_gpus().gpus;
  if (std::none_of(gpus.begin(), gpus.end(), [&](const auto& gpu) { return gpu.index == device.index; })) {
    why = "no GPU " + std::to_string(device.index) + " on this machine";
    return std::nullopt;
  }
  const double fraction = stage.gpu_memory_utilization.value_or(utilization);
  const gpu_kv_budget budget = plan_gpu_kv_budget(device.index, fraction, weight_bytes, step_reserve);
  if (!budget.kv_bytes) why = "the weights do not fit at gpu_memory_utilization " + std::to_string(fraction);
  return budget.kv_bytes;
#else
  (void)weight_bytes;
  (void)step_reserve;
  (void)utilization;
  why = "this build has no CUDA";
  return std::nullopt;
#endif
}

kernels::device_kind backend_kind(const config::device_spec& device) {
  return device.kind == config::device_kind::cuda ? kernels::device_kind::cuda : kernels::device_kind::cpu;
}

}  // namespace

void print_layout_plan(const config::cluster_config& config, const model::model_config& model, double gpu_memory_utilization,
                       std::ostream& out) {
  std::vector<config::stage_config> stages = config.stages;
  if (stages.empty()) stages.emplace_back().devices.push_back(config::device_spec{});
  config::cluster_config layout = config;
  layout.stages = stages;
  const auto ranges = config::resolve_for_model(layout, {model.num_layers, model.num_heads, model.num_kv_heads});
  const std::int32_t block_size = static_cast<std::int32_t>(config.scheduler.block_size);
  out << "layout:   " << config.file << ": " << stages.size() << " stage(s)\n";
  std::optional<std::uint64_t> pool_tokens;
  bool every_rank_known = true;
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const config::stage_config& stage = stages[s];
    out << "  stage " << s << ": layers " << ranges[s].begin << ".." << ranges[s].end << ", tensor parallel " << stage.tp_size()
        << (stage.node.empty() ? "" : ", node " + stage.node) << "\n";
    for (std::int64_t r = 0; r < stage.tp_size(); ++r) {
      const config::device_spec& device = stage.devices[static_cast<std::size_t>(r)];
      const model::shard_plan plan = model::make_shard_plan(model, stage.tp_size(), r, {ranges[s].begin, ranges[s].end});
      const std::uint64_t weights = model::shard_weight_bytes(model, plan);
      const kernels::dtype kv_type = storage_dtype(config.model.kv_cache_dtype)
                                         .value_or(model::default_kv_cache_dtype(backend_kind(device), model.torch_dtype));
      const std::uint64_t kv_per_token = model::kv_cache::bytes_per_block(model::local_config(model, plan), block_size, kv_type) /
                                         static_cast<std::uint64_t>(block_size);
      out << "    " << config::to_string(device) << ": weights " << model::format_bytes(weights) << ", KV "
          << model::format_bytes(kv_per_token) << " per token (" << kernels::dtype_name(kv_type) << ")";
      std::string why;
      const std::uint64_t reserve =
          gpu_step_reserve(model, plan, static_cast<std::int64_t>(config.scheduler.max_num_batched_tokens),
                           static_cast<std::int64_t>(config.scheduler.max_num_seqs));
      if (device.kind == config::device_kind::cuda && !stage.kv_cache_bytes)
        out << ", activations and workspaces " << model::format_bytes(reserve);
      const auto budget = kv_budget(stage, device, weights, reserve, gpu_memory_utilization, why);
      if (budget) {
        const std::uint64_t tokens = *budget / std::max<std::uint64_t>(kv_per_token, 1);
        out << "; KV budget " << model::format_bytes(*budget) << " = " << tokens << " tokens\n";
        pool_tokens = std::min(pool_tokens.value_or(std::numeric_limits<std::uint64_t>::max()), tokens);
      } else {
        out << "; KV budget unknown (" << why << ")\n";
        every_rank_known = false;
      }
    }
  }
  if (pool_tokens)
    out << "  pool:   " << (every_rank_known ? "" : "at most ") << *pool_tokens
        << " tokens of KV cache (the smallest rank decides; every rank holds the same blocks)\n";
}

}  // namespace glm4::cli
