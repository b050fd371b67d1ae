// Small kernels that exercise the host emulation of CUDA itself (fiber_block_test.cpp): a correct and a
// barrier-less block reduction, a divergent barrier, warp shuffles, dynamic shared memory, CUB shims,
// accesses around a buffer's ends.
#pragma once

#include <cuda_runtime.h>

namespace glm4::emulated_cuda::probe {

/// out[block] = sum of the block's `in` slice, through shared memory; `with_barriers` false drops
/// the __syncthreads between the tree's levels.
void launch_block_sum(float* out, const float* in, int blocks, int threads, bool with_barriers, cudaStream_t stream);
/// __syncthreads reached by the first half of the block only.
void launch_divergent_barrier(int threads, cudaStream_t stream);
/// out[lane] = sum over the segment of `width` lanes holding lane, by __shfl_xor_sync; one warp.
void launch_warp_sum(float* out, const float* in, int width, cudaStream_t stream);
/// out[t] = in[(t + shift) % 32] by __shfl_sync; one warp.
void launch_warp_rotate(float* out, const float* in, int shift, cudaStream_t stream);
/// out[block] = 1 when every float of `bytes` of dynamic shared memory, and of a static __shared__ array,
/// is NaN at the block's start (the kernel zeroes both after looking); two blocks.
void launch_shared_is_poisoned(int* out, std::size_t bytes, cudaStream_t stream);
/// out[0] = block sum by cub::BlockReduce (thread 0), out[1 + t] = exclusive prefix sums by cub::BlockScan.
void launch_cub_sums(int* out, const int* in, cudaStream_t stream);
inline constexpr int cub_threads = 64;
/// Writes 32 floats into 64 bytes of dynamic shared memory: past what the launch asked for.
void launch_shared_overrun(cudaStream_t stream);
/// out[i] = value for every i < count; one thread per element.
void launch_fill(float* out, float value, int count, int threads, cudaStream_t stream);
/// out[first + i] = value for i < count (first may be negative: writes before out); one block.
void launch_fill_from(float* out, float value, int first, int count, cudaStream_t stream);
/// out[i] = in[i + shift] for i < count (shift may be negative: reads before in); one block.
void launch_copy_shifted(float* out, const float* in, int count, int shift, cudaStream_t stream);

/// launch_fill through kernels declared __launch_bounds__(bounded_fill_threads), one plain and one a
/// template with a second bound argument: a launch of more threads is refused before anything is written.
inline constexpr int bounded_fill_threads = 64;
void launch_bounded_fill(float* out, float value, int count, int threads, cudaStream_t stream);
void launch_bounded_fill_template(float* out, float value, int count, int threads, cudaStream_t stream);

}  // namespace glm4::emulated_cuda::probe
