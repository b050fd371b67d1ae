// Laying the checkpoint over cluster.toml's stages and sizing the shared KV pool.
#include "tools/cli/serving_stack.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <thread>

#include "model/checkpoint/progress.hpp"
#include "model/checkpoint/weight_conversion.hpp"
#include "tools/cli/gpu_kv_budget.hpp"

#ifdef GLM4_HAVE_CUDA
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/device_query.hpp"
#endif

namespace glm4::cli {
namespace {


/// The stages to build: cluster.toml's, or one stage of one device (a GPU when there is one).
std::vector<config::stage_config> stages_of(const config::cluster_config& config) {
  if (!config.stages.empty()) return config.stages;
  config::stage_config stage;
  stage.devices.push_back(config::device_spec{});
#ifdef GLM4_HAVE_CUDA
  if (!kernels::cuda::query_gpus().gpus.empty()) stage.devices.front().kind = config::device_kind::cuda;
#endif
  return {stage};
}

std::unique_ptr<kernels::backend> make_backend(const config::stage_config& stage, std::int64_t rank) {
  const config::device_spec& device = stage.devices.at(static_cast<std::size_t>(rank));
  if (device.kind == config::device_kind::cpu)
    return kernels::make_cpu_backend(cpu_threads_per_rank(stage, std::thread::hardware_concurrency()));
#ifdef GLM4_HAVE_CUDA
  return kernels::make_cuda_backend(device.index);
#else
  throw std::runtime_error("this glm4-actor was built without CUDA (nvcc was not found at build time); use cpu devices "
                           "or rebuild with -DGLM4_CUDA=ON");
#endif
}

// A stage's ranks must agree on one kind of collective: shared memory between CPU ranks, NCCL
// between GPUs. The group itself is made later, by the device actors (local_runtime).
void expect_one_device_kind(std::size_t stage, const std::vector<kernels::backend*>& backends) {
  const auto on_gpu = [](const kernels::backend* b) { return b->kind() == kernels::device_kind::cuda; };
  if (!std::all_of(backends.begin(), backends.end(), on_gpu) && std::any_of(backends.begin(), backends.end(), on_gpu))
    throw std::runtime_error("stage " + std::to_string(stage) +
                             " mixes CPU ranks and GPUs: tensor parallel needs every rank of a stage on one kind of device");
}

// KV bytes one rank may fill: configured, or the default of its device kind, or what its GPU has
// left besides the largest step's needs (step_reserve).
std::uint64_t kv_budget(const config::stage_config& stage, std::int64_t rank, std::uint64_t step_reserve, std::ostream& log) {
  if (stage.kv_cache_bytes) return *stage.kv_cache_bytes;
  const config::device_spec& device = stage.devices.at(static_cast<std::size_t>(rank));
  if (device.kind == config::device_kind::cpu) return default_cpu_kv_bytes;
  // The weights are on the device already.
  const double utilization = stage.gpu_memory_utilization.value_or(0.9);
  const gpu_kv_budget budget = plan_gpu_kv_budget(device.index, utilization, 0, step_reserve);
  log << "gpu memory of " << config::to_string(device) << ": " << model::format_bytes(budget.total_bytes) << " total, "
      << model::format_bytes(budget.in_use_bytes) << " in use after the weights, "
      << model::format_bytes(step_reserve) << " kept for activations and workspaces\n";
  if (!budget.kv_bytes)
    throw std::runtime_error("no memory left for the KV cache on " + config::to_string(device) + " at gpu_memory_utilization " +
                             std::to_string(utilization) + "; raise it or use a smaller model or more stages");
  return *budget.kv_bytes;
}

// Before any weight goes up: each GPU must hold the weights and largest step of its ranks (and a
// configured kv_cache_bytes), or serve says so here rather than with a bare cudaMalloc failure.
void expect_gpus_fit(const config::cluster_config& config, const std::vector<config::stage_config>& stages,
                     const std::vector<config::layer_range>& ranges, const model::model_config& model) {
#ifdef GLM4_HAVE_CUDA
  struct gpu_need {
    std::uint64_t bytes = 0;
    std::string ranks;
    bool any_kv_configured = false;
    std::optional<double> utilization;  // the lowest of the ranks whose KV budget it sets
  };
  std::map<int, gpu_need> needs;
  for (std::size_t s = 0; s < stages.size(); ++s)
    for (std::int64_t r = 0; r < stages[s].tp_size(); ++r) {
      const config::device_spec& device = stages[s].devices[static_cast<std::size_t>(r)];
      if (device.kind != config::device_kind::cuda) continue;
      const model::shard_plan plan = model::make_shard_plan(model, stages[s].tp_size(), r, {ranges[s].begin, ranges[s].end});
      gpu_need& need = needs[device.index];
      need.bytes += model::shard_weight_bytes(model, plan) +
                    gpu_step_reserve(model, plan, static_cast<std::int64_t>(config.scheduler.max_num_batched_tokens),
                                     static_cast<std::int64_t>(config.scheduler.max_num_seqs)) +
                    stages[s].kv_cache_bytes.value_or(0);
      need.ranks += (need.ranks.empty() ? "" : ", ") + ("stage " + std::to_string(s) + " rank " + std::to_string(r));
      if (stages[s].kv_cache_bytes) {
        need.any_kv_configured = true;
      } else {
        const double utilization = stages[s].gpu_memory_utilization.value_or(0.9);
        need.utilization = std::min(need.utilization.value_or(utilization), utilization);
      }
    }
  if (needs.empty()) return;
  const auto gpus = kernels::cuda::query_gpus().gpus;
  for (const auto& [index, need] : needs) {
    const auto gpu = std::find_if(gpus.begin(), gpus.end(), [index = index](const auto& g) { return g.index == index; });
    if (gpu == gpus.end()) continue;  // make_backend says there is no such GPU
    const kernels::cuda::memory_info memory = kernels::cuda::query_memory(index);
    if (memory.total_bytes == 0) continue;
    const std::string what = "the weights and largest step" +
                             std::string(need.any_kv_configured ? " (and configured kv_cache_bytes)" : "") + " of " +
                             need.ranks;
    if (const auto why = gpu_misfit("cuda:" + std::to_string(index) + " (" + gpu->name + ")", what, memory.total_bytes,
                                    memory.free_bytes, need.utilization, need.bytes))
      throw std::runtime_error(*why);
  }
#else
  (void)config;
  (void)stages;
  (void)ranges;
  (void)model;
#endif
}

void fill_scheduler(const config::cluster_config& config, engine::scheduler_config& scheduler) {
  scheduler.block_size = static_cast<std::int32_t>(config.scheduler.block_size);
  scheduler.max_num_seqs = static_cast<std::int32_t>(config.scheduler.max_num_seqs);
  scheduler.max_num_batched_tokens = static_cast<std::int32_t>(config.scheduler.max_num_batched_tokens);
  scheduler.enable_prefix_caching = config.scheduler.enable_prefix_caching;
}

}  // namespace

int cpu_threads_per_rank(const config::stage_config& stage, unsigned cores) {
  if (stage.num_threads) return static_cast<int>(*stage.num_threads);
  return std::max(1, static_cast<int>(std::max(1u, cores)) / static_cast<int>(std::max<std::size_t>(1, stage.devices.size())));
}

bool plan_ahead_pays(const config::cluster_config& config, const std::vector<config::stage_config>& stages, unsigned cores) {
  if (stages.size() != 1) return false;  // only where the first stage samples
  if (config.scheduler.plan_ahead) return *config.scheduler.plan_ahead;
  const config::stage_config& stage = stages.front();
  const bool on_cpu = std::any_of(stage.devices.begin(), stage.devices.end(),
                                  [](const config::device_spec& d) { return d.kind == config::device_kind::cpu; });
  const auto computing = static_cast<unsigned>(cpu_threads_per_rank(stage, cores)) * static_cast<unsigned>(stage.devices.size());
  return plan_ahead_pays(!on_cpu, computing, cores);
}

bool plan_ahead_pays(bool on_gpu, unsigned computing_threads, unsigned cores) {
  return on_gpu || computing_threads < std::max(1u, cores);
}

std::optional<kernels::dtype> storage_dtype(config::model_dtype dtype) {
  switch (dtype) {
    case config::model_dtype::auto_: return std::nullopt;
    case config::model_dtype::bf16: return kernels::dtype::bf16;
    case config::model_dtype::f16: return kernels::dtype::f16;
    case config::model_dtype::f32: return kernels::dtype::f32;
  }
  return std::nullopt;
}

std::int64_t configured_max_model_len(const config::cluster_config& config, const model::model_config& model) {
  if (config.scheduler.max_model_len) return *config.scheduler.max_model_len;
  return model.max_position_embeddings > 0 ? model.max_position_embeddings : 4096;
}

std::unique_ptr<serving_stack> build_serving_stack(const config::cluster_config& config, const model::tokenizer& tokenizer,
                                                   std::ostream& log) {
  auto stack = std::make_unique<serving_stack>();
  stack->checkpoint = model::load_checkpoint(config.model.path);
  if (const auto wanted = storage_dtype(config.model.dtype); wanted && *wanted != stack->checkpoint.config.torch_dtype) {
    log << "converting the weights from " << kernels::dtype_name(stack->checkpoint.config.torch_dtype) << " to "
        << kernels::dtype_name(*wanted) << " ([model] dtype)\n";
    stack->checkpoint.weights = model::convert_weights(stack->checkpoint.config, stack->checkpoint.weights, *wanted);
    stack->checkpoint.config.torch_dtype = *wanted;
  }
  const model::model_config& model_config = stack->checkpoint.config;

  const std::vector<config::stage_config> stages = stages_of(config);
  for (std::size_t s = 0; s < stages.size(); ++s)
    if (!stages[s].node.empty())
      throw std::runtime_error(config.file + ": stage[" + std::to_string(s) + "] runs on node \"" + stages[s].node +
                               "\", but joining remote nodes is not built yet; serve every stage on this machine");
  const auto ranges = config::resolve_for_model(
      config, {model_config.num_layers, model_config.num_heads, model_config.num_kv_heads});
  expect_gpus_fit(config, stages, ranges, model_config);
  std::vector<model::stage_shape> shapes;
  for (std::size_t s = 0; s < stages.size(); ++s)
    shapes.push_back({{ranges[s].begin, ranges[s].end}, stages[s].tp_size()});
  stack->ranks = model::build_sharded_layout(model_config, stack->checkpoint.weights, shapes,
                                             [&](std::size_t s, std::int64_t r) { return make_backend(stages[s], r); },
                                             [](std::size_t stage, const std::vector<kernels::backend*>& backends) {
                                               expect_one_device_kind(stage, backends);
                                               // None yet: each rank joins with a ticket its actor is handed.
                                               return std::vector<std::shared_ptr<kernels::comm::communicator>>{};
                                             });
  const std::optional<kernels::dtype> kv_type = storage_dtype(config.model.kv_cache_dtype);
  for (std::size_t s = 0; s < stages.size(); ++s)
    for (model::rank_model& rank : stack->ranks[s]) {
      rank.model->record_decode_steps(stages[s].cuda_graphs);
      if (kv_type) rank.model->set_kv_cache_dtype(*kv_type);
    }
  stack->layout = actors::describe_layout(stack->ranks);
  stack->plan_ahead = plan_ahead_pays(config, stages, std::thread::hardware_concurrency());

  engine::engine_config& engine_config = stack->engine_config;
  engine::scheduler_config& scheduler = engine_config.scheduler;
  fill_scheduler(config, scheduler);

  // The pool's upper bound: what max_num_seqs full-length sequences use. The scheduler actor
  // lowers it to what the smallest rank reports it can hold (engine::size_kv_pool).
  const std::int64_t max_model_len = configured_max_model_len(config, model_config);
  const std::int64_t blocks_per_seq = (max_model_len + scheduler.block_size - 1) / scheduler.block_size;
  scheduler.num_blocks = static_cast<std::int32_t>(
      std::min<std::int64_t>(blocks_per_seq * scheduler.max_num_seqs + 1, std::numeric_limits<std::int32_t>::max()));
  scheduler.max_model_len = max_model_len;
  scheduler.fit_max_model_len_to_pool = !config.scheduler.max_model_len;
  for (std::size_t s = 0; s < stages.size(); ++s) {
    auto& budgets = stack->kv_budgets.emplace_back();
    for (std::int64_t r = 0; r < stages[s].tp_size(); ++r) {
      const std::uint64_t reserve = gpu_step_reserve(model_config, stack->ranks[s][static_cast<std::size_t>(r)].plan,
                                                     scheduler.max_num_batched_tokens, scheduler.max_num_seqs);
      budgets.push_back(kv_budget(stages[s], r, reserve, log));
    }
  }

  engine_config.eos_token_ids = stack->checkpoint.generation.eos_token_ids;
  if (engine_config.eos_token_ids.empty()) engine_config.eos_token_ids = tokenizer.end_of_reply_ids();
  engine_config.vocab_size = model_config.vocab_size;

  return stack;
}

actors::device_layout make_serving_layout(serving_stack& stack) {
  const engine::engine_config& config = stack.engine_config;
  return actors::make_device_layout(
      stack.ranks, [&](std::size_t s, std::int64_t r) { return stack.kv_budgets.at(s).at(static_cast<std::size_t>(r)); },
      config.scheduler.block_size, config.eos_token_ids);
}

void log_memory_plan(const serving_stack& stack, const engine::kv_pool_size& pool, std::ostream& log) {
  const engine::scheduler_config& scheduler = stack.engine_config.scheduler;
  if (!pool.note.empty()) log << "note: " << pool.note << "\n";
  log << "memory plan on " << stack.layout << ": " << model::weights_summary(stack.checkpoint.config, stack.checkpoint.weights)
      << "; KV cache " << pool.num_blocks << " blocks x " << scheduler.block_size << " tokens = "
      << model::format_bytes(static_cast<std::uint64_t>(pool.num_blocks) * pool.largest_block_bytes)
      << " on the largest rank (" << std::int64_t{pool.num_blocks} * scheduler.block_size << " tokens); max_model_len "
      << pool.max_model_len << ", max_num_seqs " << scheduler.max_num_seqs << "\n";
  for (const auto& stage : stack.ranks)
    for (const auto& rank : stage)
      log << "  " << model::describe(rank.plan) << " on " << rank.backend->name() << ", KV cache "
          << kernels::dtype_name(rank.model->kv_cache_dtype()) << " ([model] kv_cache_dtype)\n";
  log << "scheduler: " << (stack.plan_ahead ? "plans each step while the one before runs" : "plans each step once the one before is back")
      << " ([scheduler] plan_ahead)\n";
}

}  // namespace glm4::cli
