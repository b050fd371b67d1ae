// Kernels with and without the barrier CUDA needs between their threads' accesses, for the racecheck
// tests (race_probe.cpp, expect_race.cmake): built with ThreadSanitizer, the emulation must report the
// access that lacks its barrier, and nothing when the barrier is there.
#pragma once

#include <cuda_runtime.h>

namespace glm4::emulated_cuda::race_probe {

/// Two blocks of 64 threads: out[64 b + t] = (t + 1) % 64, read from the next thread's write to shared memory;
/// the __syncthreads between the write and the read only `with_barrier`.
void launch_shared_neighbour(float* out, bool with_barrier, cudaStream_t stream);
/// The same within one warp: lanes read their neighbour lane's shared write, after a __syncwarp only
/// `with_barrier` (lanes of a warp are not in lockstep since Volta).
void launch_warp_neighbour(float* out, bool with_barrier, cudaStream_t stream);
/// The same with a __shfl_xor_sync between write and read, and a __syncwarp after it only `with_barrier`:
/// a shuffle exchanges registers but orders no memory.
void launch_shuffle_then_read(float* out, bool with_barrier, cudaStream_t stream);
/// *counter += 1 by each of a block's 64 threads, by atomicAdd or (`atomic` false) a plain add.
void launch_count(unsigned* counter, bool atomic, cudaStream_t stream);

}  // namespace glm4::emulated_cuda::race_probe
