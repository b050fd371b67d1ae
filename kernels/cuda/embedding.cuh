// Embedding lookup on the GPU: rows of a (vocab, hidden) table of any float type, widened to F32.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

/// out (num_tokens, hidden) F32 = table[ids[t]]. A device-side id outside [0, vocab) gives a row of
/// NaN (ids live on the device, so the host cannot check them without a sync).
void launch_embedding(float* out, const void* table, dtype table_type, const std::int32_t* ids, std::int64_t num_tokens,
                      std::int64_t vocab, std::int64_t hidden, cudaStream_t stream);

}  // namespace glm4::kernels::cuda
