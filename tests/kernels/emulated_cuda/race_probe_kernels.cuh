// Kernels with and without the barrier CUDA needs between their threads' accesses, for the racecheck
// tests (race_probe.cpp, expect_race.cmake): built with ThreadSanitizer, the emulation must report the
// access that lacks its barrier, and nothing when the barrier is there.
#pragma once

#include <cuda_runtime.h>

namespace glm4::emulated_cuda::race_probe {

/// Four blocks of 64 threads: out[64 b + t] = 2 ((t + 1) % 64), read from the next thread's writes to static
/// and dynamic shared memory; the __syncthreads between the writes and the reads only `with_barrier`. With
/// it, each block's shared memory is its own: reusing it after another block is no race.
void launch_shared_neighbour(float* out, bool with_barrier, cudaStream_t stream);
/// The same within one warp: lanes read their neighbour lane's shared write, after a __syncwarp only
/// `with_barrier` (lanes of a warp are not in lockstep since Volta).
void launch_warp_neighbour(float* out, bool with_barrier, cudaStream_t stream);
/// The same with a __shfl_xor_sync between write and read, and a __syncwarp after it only `with_barrier`:
/// a shuffle exchanges registers but orders no memory.
void launch_shuffle_then_read(float* out, bool with_barrier, cudaStream_t stream);
/// *counter += 1 by each thread of 4 blocks of 16, by atomicAdd or (`atomic` false) a plain add.
void launch_count(unsigned* counter, bool atomic, cudaStream_t stream);
/// out[0] = the block's index, written by the first thread of each of 4 blocks: blocks of a grid run in
/// no order CUDA promises, so which write lands is a race between blocks.
void launch_blocks_write_one_word(float* out, cudaStream_t stream);
/// out[b] = 1 + out[b + 1] by the first thread of each of 4 blocks (out[4] is 0): a block reads what the
/// next one writes, so whether it sees the write is a race between blocks.
void launch_blocks_read_next(float* out, cudaStream_t stream);

}  // namespace glm4::emulated_cuda::race_probe
