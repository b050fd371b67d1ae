#include "tools/cli/gpu_kv_budget.hpp"

#include <algorithm>
#include <bit>
#include <sstream>
#include <stdexcept>

#include "model/checkpoint/progress.hpp"
#include "model/glm4_model.hpp"

#ifdef GLM4_HAVE_CUDA
#include "kernels/cuda/device_query.hpp"
#endif

namespace glm4::cli {

std::uint64_t gpu_step_reserve(const model::model_config& config, const model::shard_plan& plan,
                               std::int64_t max_num_batched_tokens, std::int64_t max_num_seqs) {
  const std::int64_t max_seqs = std::max<std::int64_t>(max_num_seqs, 1);
  // Decode steps replayed as graphs are padded up to a power of two of rows.
  const std::int64_t max_tokens = std::max<std::int64_t>(
      {max_num_batched_tokens, static_cast<std::int64_t>(std::bit_ceil(static_cast<std::uint64_t>(max_seqs))), 1});
  constexpr std::uint64_t margin_bytes = 256ull << 20;  // CUDA and cuBLAS allocations of their own
  // NCCL's channel buffers: the group is made after this plan (at start, by the device actors).
  constexpr std::uint64_t nccl_bytes = 512ull << 20;
  const model::model_config local = model::local_config(config, plan);
  // The widest GEMM input (wq/gate_up read H, wo reads the heads, w_down the FFN share) narrowed to
  // 2-byte floats when the weights are F16/BF16.
  const std::int64_t widest_input =
      std::max({local.hidden_size, local.num_heads * local.head_dim, local.intermediate_size});
  const std::uint64_t narrowed = config.torch_dtype == kernels::dtype::f32
                                     ? 0
                                     : 2 * static_cast<std::uint64_t>(max_tokens * widest_input);
  // Full-vocabulary rows, on rank 0 only (the others keep their slice of the logits, counted in the
  // activations): sample_rows filters a copy, and with tp > 1 rank 0 also stages its peers' slices.
  const std::uint64_t vocab_rows =
      plan.has_lm_head && plan.tp_rank == 0 ? 4 * static_cast<std::uint64_t>(max_seqs * config.vocab_size) : 0;
  const std::uint64_t sampled = vocab_rows * (plan.tp_size > 1 ? 2 : 1);
  return model::activation_bytes(config, plan, max_tokens, max_seqs) + narrowed + sampled + margin_bytes +
         (plan.tp_size > 1 ? nccl_bytes : 0);
}

std::optional<std::string> gpu_misfit(const std::string& device, const std::string& what, std::uint64_t total_bytes,
                                      std::uint64_t free_bytes, std::optional<double> utilization,
                                      std::uint64_t needed_bytes) {
  const std::uint64_t in_use = total_bytes - std::min(free_bytes, total_bytes);
  const double allowed = utilization ? *utilization * static_cast<double>(total_bytes) - static_cast<double>(in_use)
                                     : static_cast<double>(free_bytes);
  // With a utilization some room must be left for the KV cache; configured KV bytes are in the need.
  if (utilization ? static_cast<double>(needed_bytes) < allowed : static_cast<double>(needed_bytes) <= allowed)
    return std::nullopt;
  std::ostringstream why;
  why << device << ": " << what << " need " << model::format_bytes(needed_bytes) << ", but ";
  if (utilization)
    why << "gpu_memory_utilization " << *utilization << " of " << model::format_bytes(total_bytes) << " leaves "
        << model::format_bytes(allowed > 0 ? static_cast<std::uint64_t>(allowed) : 0) << " (" << model::format_bytes(in_use)
        << " in use already)";
  else
    why << "only " << model::format_bytes(free_bytes) << " of " << model::format_bytes(total_bytes) << " is free";
  why << ": split the model over more GPUs (more devices in the stage for tensor parallel, or more stages), use a "
         "GPU with more memory, or "
      << (utilization ? "raise gpu_memory_utilization" : "lower kv_cache_bytes");
  return why.str();
}

gpu_kv_budget plan_gpu_kv_budget(int index, double utilization, std::uint64_t weights_to_load, std::uint64_t step_reserve) {
#ifdef GLM4_HAVE_CUDA
  const double reserve_bytes = static_cast<double>(step_reserve);
  const auto memory = kernels::cuda::query_memory(index);
  gpu_kv_budget budget;
  budget.total_bytes = memory.total_bytes;
  budget.in_use_bytes = memory.total_bytes - memory.free_bytes;
  const double left = utilization * static_cast<double>(memory.total_bytes) - static_cast<double>(budget.in_use_bytes) -
                      static_cast<double>(weights_to_load) - reserve_bytes;
  if (left > 0) budget.kv_bytes = static_cast<std::uint64_t>(left);
  return budget;
#else
  (void)index;
  (void)utilization;
  (void)weights_to_load;
  (void)step_reserve;
  throw std::runtime_error("this glm4-actor was built without CUDA");
#endif
}

}  // namespace glm4::cli
