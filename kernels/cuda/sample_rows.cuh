// Sampling on the GPU: one thread block per logit row, so only token ids leave the device.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/sampling_spec.hpp"

namespace glm4::kernels::cuda {

/// ids[r] = the token row r of logits (num_rows, vocab) samples under specs[r], with the
/// semantics of kernels/sampling_spec.hpp and kernels/cpu/sample_rows.cpp. `work` holds
/// num_rows * vocab floats of scratch; specs and edits are on the device. Edits with ids outside
/// [0, vocab) are ignored, as on the CPU.
void launch_sample_rows(std::int32_t* ids, const float* logits, float* work, std::int64_t num_rows, std::int64_t vocab,
                        const row_sampling_spec* specs, const token_edit* edits, cudaStream_t stream);

}  // namespace glm4::kernels::cuda
