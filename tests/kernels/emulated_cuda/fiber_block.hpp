// Runs a kernel's threads on the host: the blocks of a grid one after another, the threads of a block
// as fibers that switch only at __syncthreads, __syncwarp and warp shuffles. Threads between two
// barriers run one at a time, in ascending order or a fixed shuffle depending on the phase and block,
// so a read of shared memory that lacks its barrier sees the wrong writer in some block and fails the
// test comparing against the CPU backend.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>

namespace glm4::emulated_cuda {

struct launch_shape {
  dim3 grid;
  dim3 block;
  std::size_t dynamic_shared_bytes = 0;
};

/// Why CUDA would refuse `shape` at launch (cudaErrorInvalidConfiguration), or nullptr when it is valid.
const char* invalid_launch_reason(const launch_shape& shape);

/// Runs `body` once per thread of every block of `shape`. Throws what a thread throws, and on a
/// deadlock (threads of a block waiting at barriers that can never all be reached).
void run_grid(const launch_shape& shape, const std::function<void()>& body);

/// What a GPU refuses only once it knows the kernel: more threads per block than its __launch_bounds__.
struct launch_refused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What kernel code reads and calls, through device_emulation.hpp. Valid inside run_grid only.
const uint3& thread_index();
const uint3& block_index();
const dim3& block_dim();
const dim3& grid_dim();
void* dynamic_shared_memory();
/// 0 or 1, alternating from block to block as they run: which of the two copies of its static
/// __shared__ storage a block uses (see fiber_block.cpp, on telling neighbouring blocks' accesses apart).
unsigned block_parity();
/// Refills a kernel's static __shared__ storage with NaN bytes once per block (the build calls it where
/// the kernel declares the storage).
void note_static_shared_memory(void* storage, std::size_t bytes);
/// Throws launch_refused when the block has more threads than `max_threads`. The build starts the body
/// of each kernel declared with __launch_bounds__(max_threads) with it, so the first thread to run
/// throws before any thread has done anything.
void expect_within_launch_bound(unsigned max_threads);
void sync_threads();
void sync_warp(unsigned mask);
/// The 64 bits `value` of lane `source_lane` (0..31) of this thread's warp; every lane of `mask` calls it.
std::uint64_t exchange_in_warp(unsigned mask, std::uint64_t value, unsigned source_lane);
/// This thread's lane within its warp.
unsigned lane_id();

}  // namespace glm4::emulated_cuda
