#include "tests/kernels/emulated_cuda/race_probe_kernels.cuh"

namespace glm4::emulated_cuda::race_probe {
namespace {

constexpr int block_threads = 64;
constexpr int shared_neighbour_blocks = 4;
constexpr unsigned all_lanes = 0xffffffffu;

__global__ void shared_neighbour_kernel(float* out, bool with_barrier) {
  __shared__ float written[block_threads];
  extern __shared__ float copied[];
  written[threadIdx.x] = static_cast<float>(threadIdx.x);
  copied[threadIdx.x] = static_cast<float>(threadIdx.x);
  if (with_barrier) __syncthreads();
  const unsigned next = (threadIdx.x + 1) % block_threads;
  out[blockIdx.x * block_threads + threadIdx.x] = written[next] + copied[next];
}

__global__ void warp_neighbour_kernel(float* out, bool with_barrier) {
  __shared__ float written[32];
  written[threadIdx.x] = static_cast<float>(threadIdx.x);
  if (with_barrier) __syncwarp();
  out[threadIdx.x] = written[threadIdx.x ^ 1u];
}

__global__ void shuffle_then_read_kernel(float* out, bool with_barrier) {
  __shared__ float written[32];
  written[threadIdx.x] = static_cast<float>(threadIdx.x);
  const float from_partner = __shfl_xor_sync(all_lanes, written[threadIdx.x], 1);
  if (with_barrier) __syncwarp();
  out[threadIdx.x] = written[threadIdx.x ^ 1u] + 0.0f * from_partner;
}

__global__ void count_kernel(unsigned* counter, bool atomic) {
  if (atomic) {
    atomicAdd(counter, 1u);
  } else {
    *counter += 1u;
  }
}

__global__ void blocks_write_one_word_kernel(float* out) {
  if (threadIdx.x == 0) out[0] = static_cast<float>(blockIdx.x);
}

__global__ void blocks_read_next_kernel(float* out) {
  if (threadIdx.x == 0) out[blockIdx.x] = 1.0f + out[blockIdx.x + 1];
}

}  // namespace

void launch_shared_neighbour(float* out, bool with_barrier, cudaStream_t stream) {
  shared_neighbour_kernel<<<shared_neighbour_blocks, block_threads, block_threads * sizeof(float), stream>>>(
      out, with_barrier);
}

void launch_warp_neighbour(float* out, bool with_barrier, cudaStream_t stream) {
  warp_neighbour_kernel<<<1, 32, 0, stream>>>(out, with_barrier);
}

void launch_shuffle_then_read(float* out, bool with_barrier, cudaStream_t stream) {
  shuffle_then_read_kernel<<<1, 32, 0, stream>>>(out, with_barrier);
}

void launch_count(unsigned* counter, bool atomic, cudaStream_t stream) {
  count_kernel<<<4, block_threads / 4, 0, stream>>>(counter, atomic);
}

void launch_blocks_write_one_word(float* out, cudaStream_t stream) {
  blocks_write_one_word_kernel<<<4, 32, 0, stream>>>(out);
}

void launch_blocks_read_next(float* out, cudaStream_t stream) { blocks_read_next_kernel<<<4, 32, 0, stream>>>(out); }

}  // namespace glm4::emulated_cuda::race_probe
