#include "tests/kernels/emulated_cuda/race_probe_kernels.cuh"

namespace glm4::emulated_cuda::race_probe {
namespace {

constexpr int block_threads = 64;
constexpr unsigned all_lanes = 0xffffffffu;

__global__ void shared_neighbour_kernel(float* out, bool with_barrier) {
  __shared__ float written[block_threads];
  written[threadIdx.x] = static_cast<float>(threadIdx.x);
  if (with_barrier) __syncthreads();
  out[blockIdx.x * block_threads + threadIdx.x] = written[(threadIdx.x + 1) % block_threads];
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

}  // namespace

void launch_shared_neighbour(float* out, bool with_barrier, cudaStream_t stream) {
  shared_neighbour_kernel<<<2, block_threads, 0, stream>>>(out, with_barrier);
}

void launch_warp_neighbour(float* out, bool with_barrier, cudaStream_t stream) {
  warp_neighbour_kernel<<<1, 32, 0, stream>>>(out, with_barrier);
}

void launch_shuffle_then_read(float* out, bool with_barrier, cudaStream_t stream) {
  shuffle_then_read_kernel<<<1, 32, 0, stream>>>(out, with_barrier);
}

void launch_count(unsigned* counter, bool atomic, cudaStream_t stream) {
  count_kernel<<<1, block_threads, 0, stream>>>(counter, atomic);
}

}  // namespace glm4::emulated_cuda::race_probe
