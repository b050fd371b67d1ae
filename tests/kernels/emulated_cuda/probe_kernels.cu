#include "tests/kernels/emulated_cuda/probe_kernels.cuh"

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

namespace glm4::emulated_cuda::probe {
namespace {

__global__ void block_sum_kernel(float* out, const float* in, bool with_barriers) {
  extern __shared__ float partial[];
  partial[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
  if (with_barriers) __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    if (with_barriers) __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = partial[0];
}

__global__ void divergent_barrier_kernel() {
  if (threadIdx.x < blockDim.x / 2) __syncthreads();
}

__global__ void warp_sum_kernel(float* out, const float* in, int width) {
  float x = in[threadIdx.x];
  for (int offset = width / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset, width);
  out[threadIdx.x] = x;
}

__global__ void warp_rotate_kernel(float* out, const float* in, int shift) {
  out[threadIdx.x] = __shfl_sync(0xffffffffu, in[threadIdx.x], static_cast<int>(threadIdx.x + shift) % 32);
}

__global__ void shared_is_poisoned_kernel(int* out, int floats) {
  extern __shared__ float words[];
  __shared__ float fixed[64];
  if (threadIdx.x != 0) return;
  int poisoned = 1;
  for (int i = 0; i < floats; ++i) poisoned &= words[i] != words[i];
  for (int i = 0; i < 64; ++i) poisoned &= fixed[i] != fixed[i];
  for (int i = 0; i < floats; ++i) words[i] = 0.0f;  // the next block must see NaN again
  for (int i = 0; i < 64; ++i) fixed[i] = 0.0f;
  out[blockIdx.x] = poisoned;
}

__global__ void cub_sums_kernel(int* out, const int* in) {
  __shared__ cub::BlockReduce<int, cub_threads>::TempStorage reduce_storage;
  __shared__ cub::BlockScan<int, cub_threads>::TempStorage scan_storage;
  const int mine = in[threadIdx.x];
  const int total = cub::BlockReduce<int, cub_threads>(reduce_storage).Sum(mine);
  if (threadIdx.x == 0) out[0] = total;
  int before = 0;
  cub::BlockScan<int, cub_threads>(scan_storage).ExclusiveSum(mine, before);
  out[1 + threadIdx.x] = before;
}

__global__ void shared_overrun_kernel() {
  extern __shared__ float words[];
  words[threadIdx.x] = 1.0f;
}

__global__ void fill_kernel(float* out, float value, int count) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < count) out[i] = value;
}

__global__ void fill_from_kernel(float* out, float value, int first, int count) {
  for (int i = static_cast<int>(threadIdx.x); i < count; i += static_cast<int>(blockDim.x)) out[first + i] = value;
}

__global__ void copy_shifted_kernel(float* out, const float* in, int count, int shift) {
  for (int i = static_cast<int>(threadIdx.x); i < count; i += static_cast<int>(blockDim.x)) out[i] = in[i + shift];
}

__global__ void __launch_bounds__(bounded_fill_threads) bounded_fill_kernel(float* out, float value, int count) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < count) out[i] = value;
}

template <int MaxThreads>
__global__ void __launch_bounds__(MaxThreads, (2048 / MaxThreads))
    bounded_fill_template_kernel(float* out, float value, int count) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < count) out[i] = value;
}

}  // namespace

void launch_block_sum(float* out, const float* in, int blocks, int threads, bool with_barriers, cudaStream_t stream) {
  block_sum_kernel<<<blocks, threads, threads * sizeof(float), stream>>>(out, in, with_barriers);
}

void launch_divergent_barrier(int threads, cudaStream_t stream) {
  divergent_barrier_kernel<<<1, threads, 0, stream>>>();
}

void launch_warp_sum(float* out, const float* in, int width, cudaStream_t stream) {
  warp_sum_kernel<<<1, 32, 0, stream>>>(out, in, width);
}

void launch_warp_rotate(float* out, const float* in, int shift, cudaStream_t stream) {
  warp_rotate_kernel<<<1, 32, 0, stream>>>(out, in, shift);
}

void launch_shared_is_poisoned(int* out, std::size_t bytes, cudaStream_t stream) {
  shared_is_poisoned_kernel<<<2, 32, bytes, stream>>>(out, static_cast<int>(bytes / sizeof(float)));
}

void launch_cub_sums(int* out, const int* in, cudaStream_t stream) {
  cub_sums_kernel<<<1, cub_threads, 0, stream>>>(out, in);
}

void launch_shared_overrun(cudaStream_t stream) { shared_overrun_kernel<<<1, 32, 64, stream>>>(); }

void launch_fill(float* out, float value, int count, int threads, cudaStream_t stream) {
  fill_kernel<<<(count + threads - 1) / threads, threads, 0, stream>>>(out, value, count);
}

void launch_fill_from(float* out, float value, int first, int count, cudaStream_t stream) {
  fill_from_kernel<<<1, 32, 0, stream>>>(out, value, first, count);
}

void launch_copy_shifted(float* out, const float* in, int count, int shift, cudaStream_t stream) {
  copy_shifted_kernel<<<1, 32, 0, stream>>>(out, in, count, shift);
}

void launch_bounded_fill(float* out, float value, int count, int threads, cudaStream_t stream) {
  bounded_fill_kernel<<<(count + threads - 1) / threads, threads, 0, stream>>>(out, value, count);
}

void launch_bounded_fill_template(float* out, float value, int count, int threads, cudaStream_t stream) {
  bounded_fill_template_kernel<bounded_fill_threads><<<(count + threads - 1) / threads, threads, 0, stream>>>(
      out, value, count);
}

}  // namespace glm4::emulated_cuda::probe
