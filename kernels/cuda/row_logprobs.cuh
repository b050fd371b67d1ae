// Raw logprobs of sampled rows on the GPU: one thread block per requested row, so that only the
// chosen token's logprob and the row's most likely tokens leave the device.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/sampling_spec.hpp"

namespace glm4::kernels::cuda {

/// chosen[i] and ranked[i * top, (i + 1) * top) for requests[i], as kernels/cpu/row_logprobs.cpp
/// computes them from logits (num_rows, vocab); requests, chosen and ranked are on the device, and
/// the host validated the requests (rows, ids, top <= min(vocab, max_ranked_logprobs)).
void launch_row_logprobs(const float* logits, std::int64_t vocab, const logprob_request* requests,
                         std::int64_t num_requests, std::int32_t top, float* chosen, ranked_logprob* ranked,
                         cudaStream_t stream);

}  // namespace glm4::kernels::cuda
