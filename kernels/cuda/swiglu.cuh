// SwiGLU on the GPU: the gated activation between the fused gate_up and down projections.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace glm4::kernels::cuda {

/// out (num_tokens, ffn) = silu(gate_up[:, :ffn]) * gate_up[:, ffn:]; gate_up (num_tokens, 2 ffn); F32.
void launch_swiglu(float* out, const float* gate_up, std::int64_t num_tokens, std::int64_t ffn, cudaStream_t stream);

}  // namespace glm4::kernels::cuda
