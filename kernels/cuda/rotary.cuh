// GLM-4 rotary embedding on the GPU: interleaved pairs (2i, 2i+1) of the first rotary_dim dims.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace glm4::kernels::cuda {

/// In place on x (num_tokens, num_heads, head_dim) F32: pair i of every head rotated by
/// positions[t] * inv_freq[i]; inv_freq (rotary_dim / 2) F32 on the device, computed on the host
/// exactly as the CPU backend does (1 / theta^(2i / rotary_dim) in F32), so both agree bit for bit
/// up to the cos/sin, which run in double here as there.
void launch_rotary(float* x, const std::int32_t* positions, const float* inv_freq, std::int64_t num_tokens,
                   std::int64_t num_heads, std::int64_t head_dim, std::int64_t rotary_dim, cudaStream_t stream);

}  // namespace glm4::kernels::cuda
