// The in-process executor: glm4_model on a backend, its paged KV cache, and sampling: by the
// backend (sample_rows: only ids leave a GPU; on the CPU its rows run in parallel), raw logprobs
// by the backend too (row_logprobs: only the numbers asked for leave it), and by the host sampler
// (engine::sampler) for rows that ask for processed logprobs, whose logits alone are copied.
// Over one rank of a sharded layout it runs that rank's part of a step (execute_stage); a whole
// model runs all of it (execute).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/sampler.hpp"
#include "engine/step_executor.hpp"
#include "model/glm4_model.hpp"
#include "model/kv_cache.hpp"

namespace glm4::engine {

/// The bytes of KV cache a device may fill.
struct kv_budget {
  std::uint64_t bytes = 0;
};

/// Where the logit rows of a step are sampled; the tokens are the same either way.
enum class sampling_site { host, device };

class local_executor : public step_executor {
 public:
  /// A cache of num_blocks blocks of block_size tokens on the model's backend.
  local_executor(model::glm4_model& model, std::int64_t num_blocks, std::int32_t block_size,
                 std::vector<token_id> eos_token_ids, logprobs_source source = logprobs_source::raw);
  /// No cache yet: memory() reports kv_budget_bytes, and allocate_kv_pool makes the cache the
  /// scheduler decided on.
  local_executor(model::glm4_model& model, kv_budget budget, std::int32_t block_size, std::vector<token_id> eos_token_ids,
                 logprobs_source source = logprobs_source::raw);

  /// The whole step on a whole model; throws std::logic_error on a rank of a sharded layout.
  std::vector<sample_result> execute(const model::step_batch& batch, std::span<const block_copy> copies,
                                     std::span<const row_sampling> rows) override;

  /// This rank's part: block copies in its cache, its layers over `hidden_in` (empty on the first
  /// stage), then the hidden states or the samples when this rank hands them on (see
  /// stage_output); other ranks return nothing but have taken part in their stage's collectives.
  stage_output execute_stage(const model::step_batch& batch, std::span<const block_copy> copies,
                             std::span<const row_sampling> rows, std::span<const float> hidden_in) override;

  /// The sampling rank (tp rank 0) fills the ids from `previous`, then passes them to its peers.
  void fill_fed_tokens(model::step_batch& batch, std::span<const fed_token> fed,
                       std::span<const sample_result> previous) override;

  /// By default the device (the backend's sample_rows); the host for comparisons.
  sampling_site sampling() const { return sampling_site_; }
  void set_sampling(sampling_site site) { sampling_site_ = site; }

  memory_report memory() const override;
  /// Reallocates the cache unless it already has num_blocks blocks.
  void allocate_kv_pool(std::int64_t num_blocks) override;
  /// Through the backend: NCCL on GPUs, a shared-memory group on CPU ranks.
  std::vector<std::uint8_t> make_group_id() override;
  void join_group(const kernels::comm::group_ticket& ticket) override;

  /// The logits (R, V) row-major of the last step, on the host (tests compare them), when sampling
  /// on the host; empty otherwise and off the sampling rank.
  const std::vector<float>& last_logits() const { return logits_; }
  /// Throws std::logic_error before allocate_kv_pool on an executor made with a budget.
  model::kv_cache& cache();

 private:
  void copy_block(const block_copy& copy);
  std::vector<sample_result> sample_on_device(const kernels::tensor& logits, std::span<const row_sampling> rows);
  /// The raw logprobs `requests` ask for, from the backend's row_logprobs, into their rows' samples.
  void fill_raw_logprobs(const kernels::tensor& logits, std::span<const kernels::logprob_request> requests,
                         std::span<const row_sampling> rows, std::vector<sample_result>& samples);

  model::glm4_model& model_;
  std::int32_t block_size_;
  std::uint64_t kv_budget_bytes_;
  std::optional<model::kv_cache> cache_;
  sampler sampler_;
  sampling_site sampling_site_ = sampling_site::device;
  std::vector<float> logits_;
};

}  // namespace glm4::engine
