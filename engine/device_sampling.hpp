// A step's sampling inputs in the kernels' plain form (kernels/sampling_spec.hpp), so a backend
// can sample on its device and hand back only token ids. Logprobs stay with the host sampler,
// which local_executor gives only the rows that ask for them.
#pragma once

#include <span>
#include <vector>

#include "engine/step_executor.hpp"
#include "kernels/sampling_spec.hpp"

namespace glm4::engine {

struct device_sampling_batch {
  std::vector<kernels::row_sampling_spec> rows;  // one per logit row
  std::vector<kernels::token_edit> edits;        // each row's bias, min_tokens mask and penalty tokens
};

/// The rows as the device samples them, with engine::sampler's semantics: the same token for the
/// same logits, params and state (the draw is uniform_draw(seed, num_output), as on the host).
/// `eos_token_ids` are masked before min_tokens unless a row ignores eos.
device_sampling_batch make_device_sampling_batch(std::span<const row_sampling> rows,
                                                 std::span<const token_id> eos_token_ids);

}  // namespace glm4::engine
