// The full GLM-4 forward on the CUDA backend against transformers' logits for the six fixture
// checkpoints (as tests/model/forward_parity_test.cpp does on the CPU): prefill logits at every
// prompt position, then teacher-forced decode steps through the paged KV cache.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <span>

#include <cuda_runtime.h>

#include <future>
#include <map>
#include <set>

#include "engine/llm_engine.hpp"
#include "engine/local_executor.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/nccl_group.hpp"
#include "model/kv_cache.hpp"
#include "model/sharded_layout.hpp"
#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/glm4_model.hpp"
#include "model/sequence_runner.hpp"
#include "tests/kernels/cuda/gpu_test_support.hpp"
#include "tests/model/reference_fixture.hpp"

namespace glm4::test {
namespace {

// Largest |got - want| over `count` logits; NaN counts as infinitely wrong.
double max_abs_error(std::span<const float> got, const float* want, std::size_t count) {
  double worst = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    const double error = std::isfinite(got[i]) ? std::fabs(static_cast<double>(got[i]) - want[i]) : INFINITY;
    worst = std::max(worst, error);
  }
  return worst;
}

// How far the reference's best token leads its runner-up: greedy picks are only compared where
// that lead is larger than the tolerance (a near tie may flip under legitimate rounding).
double top_margin(const float* logits, std::size_t count) {
  float best = -INFINITY, second = -INFINITY;
  for (std::size_t i = 0; i < count; ++i) {
    if (logits[i] > best) {
      second = best;
      best = logits[i];
    } else if (logits[i] > second) {
      second = logits[i];
    }
  }
  return static_cast<double>(best) - second;
}

}  // namespace

TEST_CASE("the CUDA forward matches transformers on every fixture checkpoint", "[cuda][model][parity]") {
  if (!have_gpu_or_skip()) return;
  // The BF16 checkpoints also as a pre-sm_80 GPU runs them (F16 storage and GEMMs), on any GPU.
  const auto [model_dir, as_before_sm80] =
      GENERATE(std::pair<std::string, bool>{"glm-f32", false}, std::pair<std::string, bool>{"glm-bf16", false},
               std::pair<std::string, bool>{"glm4-f32", false}, std::pair<std::string, bool>{"glm4-bf16", false},
               std::pair<std::string, bool>{"chatglm-f32", false}, std::pair<std::string, bool>{"chatglm-bf16", false},
               std::pair<std::string, bool>{"glm-bf16", true}, std::pair<std::string, bool>{"glm4-bf16", true});
  CAPTURE(model_dir, as_before_sm80);
  const model::checkpoint checkpoint = model::load_checkpoint(test_data_dir() / "models" / model_dir);
  const reference_set reference = reference_for(model_dir);
  // F32 weights: cuBLAS FP32 GEMMs, so the CPU bound holds. BF16 weights: the GEMM inputs are the
  // activations rounded to BF16 (F16 before sm_80), a few 1e-3 relative per layer.
  const double tolerance =
      (reference.bf16_weights ? 3e-2 : (reference.f32_compute ? 1e-4 : 2e-2)) * reference.logit_scale;
  const auto vocab = static_cast<std::size_t>(checkpoint.config.vocab_size);

  auto backend = kernels::make_cuda_backend(0);
  if (as_before_sm80) dynamic_cast<kernels::cuda::cuda_backend&>(*backend).store_bf16_as_f16();
  model::glm4_model model(checkpoint.config, checkpoint.weights, *backend);
  double worst_prefill = 0.0, worst_decode = 0.0;
  for (const reference_prompt& prompt : reference.prompts) {
    CAPTURE(prompt.name);
    const std::size_t num_prompt = prompt.ids.size();
    model::sequence_runner runner(model, static_cast<std::int64_t>(num_prompt + prompt.greedy_ids.size()), 16);
    const std::vector<float> prefill = runner.prefill(prompt.ids, model::logit_rows::all);
    REQUIRE(prefill.size() == num_prompt * vocab);
    const double prefill_error = max_abs_error(prefill, prompt.prefill_logits.as<float>(), num_prompt * vocab);
    INFO("prefill max |diff| " << prefill_error << " (tolerance " << tolerance << ")");
    CHECK(prefill_error <= tolerance);
    worst_prefill = std::max(worst_prefill, prefill_error);

    const auto num_decode_rows = static_cast<std::size_t>(prompt.decode_logits.dim(0));
    std::vector<float> logits(prefill.end() - static_cast<std::ptrdiff_t>(vocab), prefill.end());
    for (std::size_t step = 0; step < prompt.greedy_ids.size(); ++step) {
      if (step > 0) logits = runner.decode(prompt.greedy_ids[step - 1]);
      CAPTURE(step);
      if (step < num_decode_rows) {
        const float* want = prompt.decode_logits.as<float>() + step * vocab;
        const double decode_error = max_abs_error(logits, want, vocab);
        INFO("decode max |diff| " << decode_error);
        CHECK(decode_error <= tolerance);
        worst_decode = std::max(worst_decode, decode_error);
        if (top_margin(want, vocab) > 2 * tolerance) CHECK(model::argmax(logits) == prompt.greedy_ids[step]);
      }
    }
  }
  WARN(model_dir << (as_before_sm80 ? " (F16 storage, as before sm_80)" : "") << " on " << backend->name()
                 << ": max |diff| prefill " << worst_prefill << ", decode "
                 << worst_decode << " (logit scale " << reference.logit_scale << ")");
}

TEST_CASE("decode steps replayed as CUDA graphs give the logits of running them directly", "[cuda][model][graphs]") {
  if (!have_gpu_or_skip()) return;
  const std::string model_dir = GENERATE(as<std::string>{}, "glm4-f32", "glm-bf16");
  CAPTURE(model_dir);
  const model::checkpoint checkpoint = model::load_checkpoint(test_data_dir() / "models" / model_dir);
  const reference_set reference = reference_for(model_dir);
  // Two backends on one GPU: recordings belong to a backend.
  auto direct_backend = kernels::make_cuda_backend(0);
  auto recording_backend = kernels::make_cuda_backend(0);
  model::glm4_model direct(checkpoint.config, checkpoint.weights, *direct_backend);
  model::glm4_model recorded(checkpoint.config, checkpoint.weights, *recording_backend);
  recorded.record_decode_steps(true);
  double worst = 0.0;
  for (const reference_prompt& prompt : reference.prompts) {  // a new cache per prompt: recordings start over
    CAPTURE(prompt.name);
    const auto max_tokens = static_cast<std::int64_t>(prompt.ids.size() + prompt.greedy_ids.size());
    constexpr std::int32_t block_size = 16;
    model::sequence_runner want(direct, max_tokens, block_size), got(recorded, max_tokens, block_size);
    want.prefill(prompt.ids);
    got.prefill(prompt.ids);
    // A step is recorded once per padded block-table width, less those dropped when a wider table
    // moved the model's buffers; none survive from the previous prompt's cache.
    std::set<std::uint64_t> table_strides;
    for (std::size_t step = 0; step + 1 < prompt.greedy_ids.size(); ++step) {
      const std::vector<float> a = want.decode(prompt.greedy_ids[step]), b = got.decode(prompt.greedy_ids[step]);
      worst = std::max(worst, max_abs_error(b, a.data(), a.size()));
      const std::size_t context = prompt.ids.size() + step + 1;
      table_strides.insert(std::bit_ceil((context + block_size - 1) / block_size));
    }
    const std::size_t recordings = dynamic_cast<kernels::cuda::cuda_backend&>(*recording_backend).num_recordings();
    CHECK(recordings >= 1);
    CHECK(recordings <= table_strides.size());
  }
  INFO("max |graph - direct| " << worst);
  CHECK(worst <= 1e-6 * reference.logit_scale);
}

TEST_CASE("an engine on the GPU serves the same tokens with decode steps replayed as graphs", "[cuda][model][graphs]") {
  if (!have_gpu_or_skip()) return;
  const model::checkpoint checkpoint = model::load_checkpoint(test_data_dir() / "models" / "glm-bf16");
  engine::engine_config config;
  config.scheduler.num_blocks = 256;
  config.scheduler.block_size = 16;
  config.scheduler.max_num_seqs = 5;  // decode batches of 1 to 5 rows: shapes 1, 2, 4 and 8
  config.scheduler.max_num_batched_tokens = 64;
  config.scheduler.max_model_len = 512;
  config.eos_token_ids = checkpoint.generation.eos_token_ids;
  config.vocab_size = checkpoint.config.vocab_size;
  // Seven requests of different lengths: prefills (growing the scratch) land between decode steps.
  // Both runs pad decode steps alike (cuBLAS may pick another kernel for another row count), one
  // replaying graphs, the other running the same ops directly.
  const auto serve = [&](bool graphs) {
    auto backend = std::make_unique<kernels::cuda::cuda_backend>(0);
    backend->set_recording(graphs);
    model::glm4_model model(checkpoint.config, checkpoint.weights, *backend);
    model.record_decode_steps(true);
    engine::local_executor executor(model, config.scheduler.num_blocks, config.scheduler.block_size, config.eos_token_ids);
    engine::llm_engine engine(config, executor, nullptr);
    for (engine::request_id id = 0; id < 7; ++id) {
      engine::sampling_params params;
      params.temperature = id % 2 == 0 ? 0.0 : 0.9;  // sampled rows are seeded: the same draws either way
      params.seed = 1000 + id;
      params.max_tokens = static_cast<std::int32_t>(6 + 5 * id);
      params.ignore_eos = true;
      std::vector<engine::token_id> prompt;
      for (std::uint64_t i = 0; i < 3 + 11 * id; ++i) prompt.push_back(static_cast<engine::token_id>((17 * i + id) % 1000));
      REQUIRE_FALSE(engine.add_request(id, prompt, params));
    }
    std::map<engine::request_id, std::vector<engine::token_id>> tokens;
    while (engine.has_unfinished())
      for (const auto& out : engine.step())
        for (const auto& t : out.tokens) tokens[out.request].push_back(t.token);
    CHECK((backend->num_recordings() > 0) == graphs);
    return tokens;
  };
  const auto direct = serve(false);
  CHECK(serve(true) == direct);
  CHECK(direct.size() == 7);
}

TEST_CASE("two GPUs splitting every layer (NCCL) match transformers' prefill logits", "[cuda][model][parity][nccl]") {
  if (!have_gpu_or_skip()) return;
  int num_gpus = 0;
  if (cudaGetDeviceCount(&num_gpus) != cudaSuccess || num_gpus < 2 || !kernels::cuda::have_nccl()) {
    WARN("GPU test skipped: needs two GPUs and NCCL (found " << num_gpus << " GPU(s))");
    return;
  }
  const std::string model_dir = GENERATE(as<std::string>{}, "glm4-f32", "glm-bf16");
  CAPTURE(model_dir);
  const model::checkpoint checkpoint = model::load_checkpoint(test_data_dir() / "models" / model_dir);
  const reference_set reference = reference_for(model_dir);
  const double tolerance = (reference.bf16_weights ? 3e-2 : (reference.f32_compute ? 1e-4 : 2e-2)) * reference.logit_scale;
  const auto vocab = static_cast<std::size_t>(checkpoint.config.vocab_size);
  const std::vector<model::stage_shape> stages{{{0, checkpoint.config.num_layers}, 2}};
  auto ranks = model::build_sharded_layout(
      checkpoint.config, checkpoint.weights, stages,
      [](std::size_t, std::int64_t rank) { return kernels::make_cuda_backend(static_cast<int>(rank)); },
      [](std::size_t, const std::vector<kernels::backend*>& backends) {
        std::vector<kernels::cuda::cuda_backend*> gpus;
        for (kernels::backend* b : backends) gpus.push_back(&dynamic_cast<kernels::cuda::cuda_backend&>(*b));
        return kernels::cuda::make_nccl_group(gpus);
      });
  const reference_prompt& prompt = reference.prompts.front();
  const auto num_tokens = static_cast<std::int64_t>(prompt.ids.size());
  const std::int64_t num_blocks = (num_tokens + 15) / 16;
  std::vector<std::int32_t> blocks(static_cast<std::size_t>(num_blocks));
  for (std::size_t b = 0; b < blocks.size(); ++b) blocks[b] = static_cast<std::int32_t>(b);
  model::step_batch batch;
  batch.block_size = 16;
  model::add_sequence(batch, prompt.ids, 0, blocks, model::logit_rows::all);
  std::vector<std::unique_ptr<model::kv_cache>> caches;
  for (auto& rank : ranks[0])
    caches.push_back(std::make_unique<model::kv_cache>(*rank.backend, rank.model->config(), num_blocks, 16));
  // Both ranks at once, as their device actors run them: the collectives need both.
  std::vector<std::future<std::vector<float>>> results;
  for (std::size_t r = 0; r < 2; ++r)
    results.push_back(std::async(std::launch::async, [&, r] { return ranks[0][r].model->forward_logits(batch, *caches[r]); }));
  const std::vector<float> logits = results[0].get();
  results[1].get();
  REQUIRE(logits.size() == prompt.ids.size() * vocab);
  const double error = max_abs_error(logits, prompt.prefill_logits.as<float>(), logits.size());
  INFO("prefill max |diff| " << error << " (tolerance " << tolerance << ")");
  CHECK(error <= tolerance);
}

}  // namespace glm4::test
