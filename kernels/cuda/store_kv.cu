#include "kernels/cuda/store_kv.cuh"

#include <stdexcept>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/launch_config.cuh"

namespace glm4::kernels::cuda {
namespace {

// One block per token; threads stride over the Hkv * D row.
__global__ void store_kv_kernel(float* k_cache, float* v_cache, const float* k, const float* v,
                                const std::int32_t* slots, std::int64_t row, std::int64_t num_slots) {
  const std::int64_t t = blockIdx.x;
  const std::int64_t slot = slots[t];
  if (slot < 0 || slot >= num_slots) return;
  for (std::int64_t i = threadIdx.x; i < row; i += blockDim.x) {
    k_cache[slot * row + i] = k[t * row + i];
    v_cache[slot * row + i] = v[t * row + i];
  }
}

}  // namespace

void launch_store_kv(float* k_cache, float* v_cache, const float* k, const float* v, const std::int32_t* slots,
                     std::int64_t num_tokens, std::int64_t row, std::int64_t num_slots, cudaStream_t stream) {
  if (num_tokens < 0 || row < 0 || num_slots < 0) throw std::invalid_argument("launch_store_kv: bad shape");
  if (num_tokens == 0 || row == 0) return;
  store_kv_kernel<<<static_cast<unsigned>(num_tokens), elementwise_threads, 0, stream>>>(k_cache, v_cache, k, v, slots,
                                                                                         row, num_slots);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
