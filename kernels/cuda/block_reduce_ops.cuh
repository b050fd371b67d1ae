// Pieces the block-per-row kernels (sample_rows.cu, row_logprobs.cu) share around CUB's block
// reductions, whose result only thread 0 receives.
#pragma once

namespace glm4::kernels::cuda {

struct max_of_floats {
  __device__ float operator()(float a, float b) const { return a > b ? a : b; }
};

/// Hands thread 0's `value` to every thread of the block through `slot` in shared memory. Called
/// by all threads; the trailing __syncthreads lets the slot, and CUB storage used before, be
/// written again.
template <class T>
__device__ T broadcast_from_first(T* slot, T value) {
  if (threadIdx.x == 0) *slot = value;
  __syncthreads();
  const T out = *slot;
  __syncthreads();
  return out;
}

}  // namespace glm4::kernels::cuda
