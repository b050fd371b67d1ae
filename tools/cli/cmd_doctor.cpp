// glm4-actor doctor: what this machine and this binary can run -- GPUs, the architectures compiled
// in, driver/runtime/NCCL versions, P2P, with --model a memory plan and with --config the plan of
// a layout, rank by rank. Exits 0 without a GPU.
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "kernels/arch_support.hpp"
#include "model/checkpoint/config_parser.hpp"
#include "model/checkpoint/make_model.hpp"
#include "model/checkpoint/progress.hpp"
#include "model/kv_cache.hpp"
#include "config/cluster_config.hpp"
#include "model/shard_plan.hpp"
#include "tools/cli/cli_support.hpp"
#include "tools/cli/gpu_kv_budget.hpp"
#include "tools/cli/layout_plan.hpp"
#include "tools/cli/serving_stack.hpp"
#ifdef GLM4_HAVE_CUDA
#include "kernels/cuda/device_query.hpp"
#endif

namespace glm4::cli {
namespace {

struct doctor_flags {
  std::string model_dir;
  std::string config_file;
  double gpu_memory_utilization = 0.9;
};

// What a checkpoint needs on a GPU, whichever it is: weights as stored ([model] dtype when a
// config asks), and its KV cache ([model] kv_cache_dtype, or model::default_kv_cache_dtype).
struct model_needs {
  model::model_config config;
  std::uint64_t weight_bytes = 0;
  kernels::dtype kv_type = kernels::dtype::f32;
  std::uint64_t kv_bytes_per_token = 0;
};

model_needs read_model_needs(const std::string& dir, const config::cluster_config* layout) {
  model_needs needs;
  needs.config = model::load_model_config(dir);
  if (layout)
    if (const auto wanted = storage_dtype(layout->model.dtype)) needs.config.torch_dtype = *wanted;
  needs.weight_bytes = model::preset_weight_bytes(needs.config);
  // BF16 weights stored as F16 before sm_80 keep the size, so one plan serves every GPU.
  const auto asked = layout ? storage_dtype(layout->model.kv_cache_dtype) : std::nullopt;
  needs.kv_type = asked.value_or(model::default_kv_cache_dtype(kernels::device_kind::cuda, needs.config.torch_dtype));
  needs.kv_bytes_per_token = model::kv_cache::bytes_per_block(needs.config, 1, needs.kv_type);
  return needs;
}

void print_model_needs(const std::string& dir, const model_needs& needs) {
  const auto& c = needs.config;
  std::cout << "model:    " << dir << " (" << model::layout_name(c.layout) << " layout, "
            << kernels::dtype_name(c.torch_dtype) << ")\n"
            << "          weights " << model::format_bytes(needs.weight_bytes) << "; KV cache on a GPU "
            << model::format_bytes(needs.kv_bytes_per_token) << " per token (" << kernels::dtype_name(needs.kv_type)
            << " keys and values: " << c.num_layers << " layers x " << c.num_kv_heads << " KV heads x " << c.head_dim
            << " dims)\n";
}

std::string fixed(double value, int digits) {
  std::ostringstream text;
  text << std::fixed << std::setprecision(digits) << value;
  return text.str();
}

#ifdef GLM4_HAVE_CUDA
std::string cuda_version(int code) {
  return code == 0 ? "none" : std::to_string(code / 1000) + "." + std::to_string(code % 1000 / 10);
}

// How many tokens of KV cache `serve --model` would give `gpu`: serve's own rule (gpu_kv_budget.hpp,
// also doctor --config's), vLLM's: the utilization's share of the GPU's memory, less what is in use,
// the weights and what the largest step needs besides, for one rank holding every layer at the
// scheduler's default limits.
void print_memory_plan(const kernels::cuda::gpu_info& gpu, const model_needs& needs, double utilization) {
  const config::scheduler_section limits;
  const model::model_config& model = needs.config;
  const model::shard_plan whole = model::make_shard_plan(model, 1, 0, {0, model.num_layers});
  const std::uint64_t reserve = gpu_step_reserve(model, whole, limits.max_num_batched_tokens, limits.max_num_seqs);
  const gpu_kv_budget budget = plan_gpu_kv_budget(gpu.index, utilization, needs.weight_bytes, reserve);
  const auto share = static_cast<std::uint64_t>(static_cast<double>(budget.total_bytes) * utilization);
  std::cout << "  plan:   " << model::format_bytes(share) << " (" << model::format_bytes(budget.total_bytes) << " x "
            << fixed(utilization, 2) << ") - in use " << model::format_bytes(budget.in_use_bytes) << " - weights "
            << model::format_bytes(needs.weight_bytes) << " - activations and workspaces " << model::format_bytes(reserve)
            << " (" << limits.max_num_batched_tokens << "-token steps, " << limits.max_num_seqs << " sequences)";
  if (!budget.kv_bytes) {
    std::cout << ": nothing is left for the KV cache; raise --gpu-memory-utilization, use a bigger GPU or split the "
                 "model over more (doctor --config plans a layout)\n";
    return;
  }
  const std::uint64_t tokens = *budget.kv_bytes / std::max<std::uint64_t>(needs.kv_bytes_per_token, 1);
  std::cout << " = " << model::format_bytes(*budget.kv_bytes) << " KV cache, " << tokens << " tokens (" << tokens / 16
            << " blocks of 16)";
  if (model.max_position_embeddings > 0 && tokens < static_cast<std::uint64_t>(model.max_position_embeddings))
    std::cout << "; less than one full " << model.max_position_embeddings << "-token context";
  std::cout << "\n";
  if (model.torch_dtype == kernels::dtype::bf16 && !gpu.has_bf16)
    std::cout << "          BF16 weights will be stored as F16 on this GPU (no native BF16 before sm_80)\n";
}

int run_doctor_cuda(const doctor_flags& flags, const std::optional<model_needs>& needs) {
  namespace kc = kernels::cuda;
  const std::string compiled = kc::compiled_architectures();
  const auto archs = kernels::parse_cuda_architectures(compiled);
  const int toolkit = kc::toolkit_major_version();
  std::cout << "build:    CUDA backend, CUDA " << toolkit << " toolkit; kernels for " << kernels::describe(archs) << "\n";
  const kc::gpu_inventory inventory = kc::query_gpus();
  std::cout << "versions: driver "
            << (inventory.driver_version == 0 ? "not loaded" : "for CUDA " + cuda_version(inventory.driver_version))
            << ", runtime " << cuda_version(inventory.runtime_version) << ", NCCL "
            << kc::nccl_version().value_or("not linked") << "\n";
  // Minor-version compatibility lets a 13.0 driver run a 13.x runtime; a 12.x driver cannot.
  if (inventory.driver_version != 0 && inventory.driver_version / 1000 < inventory.runtime_version / 1000)
    std::cout << "          the driver is older than the runtime: update the NVIDIA driver to one for CUDA "
              << cuda_version(inventory.runtime_version) << " or newer\n";
  if (inventory.gpus.empty()) {
    std::cout << "No CUDA GPU found (" << inventory.reason_none << "); glm4-actor runs on the CPU backend here.\n";
    return 0;
  }
  for (const auto& gpu : inventory.gpus) {
    std::cout << "GPU " << gpu.index << ":    " << gpu.name << ", compute capability " << gpu.compute_major << "."
              << gpu.compute_minor << ", " << model::format_bytes(gpu.total_memory_bytes) << ", BF16 "
              << (gpu.has_bf16 ? "native" : "no (weights stored as F16)") << "\n";
    const auto verdict = kernels::can_run(archs, gpu.compute_major, gpu.compute_minor, toolkit);
    const auto image = kc::probe_kernel_image(gpu.index);
    std::cout << "  runs:   ";
    if (verdict.mode == kernels::run_mode::native_sass)
      std::cout << "yes, native sm_" << verdict.used.value;
    else if (verdict.mode == kernels::run_mode::ptx_jit)
      std::cout << "yes, JIT from compute_" << verdict.used.value << " PTX (slow first start; rebuild with -DCMAKE_CUDA_ARCHITECTURES="
                << gpu.compute_major << gpu.compute_minor << " for native code)";
    else
      std::cout << "NO: " << verdict.advice;
    std::cout << (image.loads ? "; driver loaded the kernels (binary " + std::to_string(image.binary_version) +
                                    ", PTX " + std::to_string(image.ptx_version) + ")"
                              : "; driver: " + image.error)
              << "\n";
    if (needs) print_memory_plan(gpu, *needs, flags.gpu_memory_utilization);
  }
  const int count = static_cast<int>(inventory.gpus.size());
  for (int a = 0; a < count; ++a)
    for (int b = a + 1; b < count; ++b)
      std::cout << "P2P:      GPU " << a << " <-> GPU " << b << ": "
                << (kc::can_access_peer(a, b) && kc::can_access_peer(b, a) ? "yes" : "no (copies go through the host)")
                << "\n";
  return 0;
}
#endif

int run_doctor(const CLI::App& command, const doctor_flags& flags) {
  if (!(flags.gpu_memory_utilization > 0.0 && flags.gpu_memory_utilization <= 1.0))
    throw usage_error(command, "--gpu-memory-utilization must be in (0, 1], got " + fixed(flags.gpu_memory_utilization, 3));
  std::cout << "glm4-actor doctor\n";
  std::optional<config::cluster_config> layout;
  std::string model_dir = flags.model_dir;
  if (!flags.config_file.empty()) {
    layout = config::load_cluster_config(flags.config_file);
    if (model_dir.empty()) model_dir = layout->model.path.string();
    if (model_dir.empty()) throw usage_error(command, flags.config_file + " has no [model] path; give it there or pass --model DIR");
  }
  std::optional<model_needs> needs;
  if (!model_dir.empty()) {
    needs = read_model_needs(model_dir, layout ? &*layout : nullptr);
    print_model_needs(model_dir, *needs);
  }
  if (layout) print_layout_plan(*layout, needs->config, flags.gpu_memory_utilization, std::cout);
#ifdef GLM4_HAVE_CUDA
  return run_doctor_cuda(flags, needs);
#else
  std::cout << "build:    without CUDA (nvcc was not found when this glm4-actor was configured)\n"
            << "No CUDA GPU can be used by this build; glm4-actor runs on the CPU backend. Rebuild with "
               "-DGLM4_CUDA=ON on a machine with the CUDA toolkit for GPU support.\n";
  return 0;
#endif
}

}  // namespace

command_runner add_doctor_command(CLI::App& command) {
  auto flags = std::make_shared<doctor_flags>();
  command.add_option("--model", flags->model_dir, "Checkpoint directory: adds a memory plan for each GPU")
      ->check(CLI::ExistingDirectory);
  command.add_option("--config", flags->config_file, "cluster.toml: adds the memory plan of its layout, rank by rank")
      ->check(CLI::ExistingFile);
  command.add_option("--gpu-memory-utilization", flags->gpu_memory_utilization,
                     "Share of each GPU's memory the weights, activations and KV cache may take, in (0, 1] "
                     "(as serve's gpu_memory_utilization)")
      ->capture_default_str();
  return [&command, flags] { return run_doctor(command, *flags); };
}

}  // namespace glm4::cli
