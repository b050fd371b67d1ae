// Sizing and building the one-device serving stack.
#include "tools/cli/serving_stack.hpp"

#include <algorithm>
#include <ostream>
#include <stdexcept>

#include "model/kv_cache.hpp"

#ifdef GLM4_HAVE_CUDA
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/device_query.hpp"
#endif

namespace glm4::cli {
namespace {

constexpr std::uint64_t default_cpu_kv_bytes = 4ull << 30;
constexpr double gib = 1024.0 * 1024.0 * 1024.0;

struct device_choice {
  config::device_kind kind = config::device_kind::cpu;
  int index = 0;
  std::optional<std::uint64_t> kv_cache_bytes;
  double gpu_memory_utilization = 0.9;
  int num_threads = 0;
};

device_choice choose_device(const config::cluster_config& config, std::ostream& log) {
  device_choice choice;
  if (config.stages.empty()) {
#ifdef GLM4_HAVE_CUDA
    if (!kernels::cuda::query_gpus().gpus.empty()) choice.kind = config::device_kind::cuda;
#endif
    return choice;
  }
  const config::stage_config& stage = config.stages.front();
  if (config.stages.size() > 1 || stage.devices.size() > 1)
    log << "note: " << config.file << " lays the model over " << config.stages.size() << " stage(s) and "
        << stage.devices.size()
        << " rank(s) in the first; this build serves on one local device, the first one listed ("
        << config::to_string(stage.devices.front()) << ")\n";
  choice.kind = stage.kind();
  choice.index = stage.devices.front().index;
  choice.kv_cache_bytes = stage.kv_cache_bytes;
  if (stage.gpu_memory_utilization) choice.gpu_memory_utilization = *stage.gpu_memory_utilization;
  if (stage.num_threads) choice.num_threads = static_cast<int>(*stage.num_threads);
  return choice;
}

std::unique_ptr<kernels::backend> make_backend(const device_choice& device) {
  if (device.kind == config::device_kind::cpu) return kernels::make_cpu_backend(device.num_threads);
#ifdef GLM4_HAVE_CUDA
  return kernels::make_cuda_backend(device.index);
#else
  throw std::runtime_error("this glm4-actor was built without CUDA (nvcc was not found at build time); use cpu devices "
                           "or rebuild with -DGLM4_CUDA=ON");
#endif
}

// KV bytes for the pool: configured, or the default of the device kind.
std::uint64_t kv_budget(const device_choice& device, std::ostream& log) {
  if (device.kv_cache_bytes) return *device.kv_cache_bytes;
  if (device.kind == config::device_kind::cpu) return default_cpu_kv_bytes;
#ifdef GLM4_HAVE_CUDA
  // The weights are on the device already: the pool takes what gpu_memory_utilization leaves,
  // less a reserve for activations and cuBLAS workspaces.
  const auto memory = kernels::cuda::query_memory(device.index);
  const double allowed = device.gpu_memory_utilization * static_cast<double>(memory.total_bytes);
  const double used = static_cast<double>(memory.total_bytes - memory.free_bytes);
  const double reserve = 1.0 * gib;
  const double budget = allowed - used - reserve;
  log << "gpu memory: " << memory.total_bytes / gib << " GiB total, " << used / gib << " GiB in use after the weights\n";
  if (budget <= 0)
    throw std::runtime_error("no GPU memory left for the KV cache at gpu_memory_utilization " +
                             std::to_string(device.gpu_memory_utilization) + "; raise it or use a smaller model");
  return static_cast<std::uint64_t>(budget);
#else
  (void)log;
  return default_cpu_kv_bytes;
#endif
}

}  // namespace

std::int64_t configured_max_model_len(const config::cluster_config& config, const model::model_config& model) {
  if (config.scheduler.max_model_len) return *config.scheduler.max_model_len;
  return model.max_position_embeddings > 0 ? model.max_position_embeddings : 4096;
}

std::unique_ptr<serving_stack> build_serving_stack(const config::cluster_config& config, const model::tokenizer& tokenizer,
                                                   std::ostream& log) {
  auto stack = std::make_unique<serving_stack>();
  stack->checkpoint = model::load_checkpoint(config.model.path);
  const model::model_config& model_config = stack->checkpoint.config;
  if (config.model.dtype != config::model_dtype::auto_)
    log << "note: dtype " << config::dtype_name(config.model.dtype)
        << " is not converted yet; serving the checkpoint's own dtype\n";

  const device_choice device = choose_device(config, log);
  stack->backend = make_backend(device);
  stack->model = std::make_unique<model::glm4_model>(model_config, stack->checkpoint.weights, *stack->backend);

  engine::engine_config& engine_config = stack->engine_config;
  engine::scheduler_config& scheduler = engine_config.scheduler;
  scheduler.block_size = static_cast<std::int32_t>(config.scheduler.block_size);
  scheduler.max_num_seqs = static_cast<std::int32_t>(config.scheduler.max_num_seqs);
  scheduler.max_num_batched_tokens = static_cast<std::int32_t>(config.scheduler.max_num_batched_tokens);
  scheduler.enable_prefix_caching = config.scheduler.enable_prefix_caching;

  // The pool: the byte budget, but no more blocks than max_num_seqs full-length sequences use.
  const std::size_t block_bytes = model::kv_cache::bytes_per_block(model_config, scheduler.block_size);
  std::int64_t max_model_len = configured_max_model_len(config, model_config);
  const std::int64_t blocks_per_seq = (max_model_len + scheduler.block_size - 1) / scheduler.block_size;
  const std::int64_t budget_blocks = static_cast<std::int64_t>(kv_budget(device, log) / block_bytes);
  const std::int64_t useful_blocks = blocks_per_seq * scheduler.max_num_seqs + 1;
  const std::int64_t num_blocks = std::min({budget_blocks, useful_blocks, std::int64_t{1} << 30});
  const std::int64_t pool_tokens = num_blocks * scheduler.block_size;
  if (pool_tokens < max_model_len) {
    if (config.scheduler.max_model_len)
      throw std::runtime_error("max_model_len " + std::to_string(max_model_len) + " does not fit the KV cache (" +
                               std::to_string(pool_tokens) + " tokens of " + std::to_string(num_blocks) +
                               " blocks); raise kv_cache_bytes or lower [scheduler] max_model_len");
    if (pool_tokens < scheduler.block_size)
      throw std::runtime_error("the KV cache budget holds no block of " + std::to_string(scheduler.block_size) +
                               " tokens (" + std::to_string(block_bytes) + " bytes each); raise kv_cache_bytes");
    log << "note: max_model_len lowered from " << max_model_len << " to the " << pool_tokens
        << " tokens the KV cache holds\n";
    max_model_len = pool_tokens;
  }
  scheduler.num_blocks = static_cast<std::int32_t>(num_blocks);
  scheduler.max_model_len = max_model_len;
  stack->max_model_len = max_model_len;

  engine_config.eos_token_ids = stack->checkpoint.generation.eos_token_ids;
  if (engine_config.eos_token_ids.empty()) engine_config.eos_token_ids = tokenizer.end_of_reply_ids();
  engine_config.vocab_size = model_config.vocab_size;
  stack->executor = std::make_shared<engine::local_executor>(*stack->model, num_blocks, scheduler.block_size,
                                                             engine_config.eos_token_ids);

  log << "memory plan on " << stack->backend->name() << ": "
      << model::weights_summary(model_config, stack->checkpoint.weights) << "; KV cache " << num_blocks << " blocks x "
      << scheduler.block_size << " tokens = " << static_cast<double>(num_blocks) * static_cast<double>(block_bytes) / gib
      << " GiB (" << pool_tokens << " tokens); max_model_len " << max_model_len << ", max_num_seqs "
      << scheduler.max_num_seqs << "\n";
  return stack;
}

}  // namespace glm4::cli
