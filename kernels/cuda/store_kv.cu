#include "kernels/cuda/store_kv.cuh"

#include <stdexcept>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/kv_element.cuh"
#include "kernels/cuda/launch_config.cuh"

namespace glm4::kernels::cuda {
namespace {

// One block per token; threads stride over the Hkv * D row.
template <class KV>
__global__ void store_kv_kernel(KV* k_cache, KV* v_cache, const float* k, const float* v, const std::int32_t* slots,
                                std::int64_t row, std::int64_t num_slots) {
  const std::int64_t t = blockIdx.x;
  const std::int64_t slot = slots[t];
  if (slot < 0 || slot >= num_slots) return;
  for (std::int64_t i = threadIdx.x; i < row; i += blockDim.x) {
    narrow_to(k_cache + slot * row + i, k[t * row + i]);
    narrow_to(v_cache + slot * row + i, v[t * row + i]);
  }
}

}  // namespace

void launch_store_kv(void* k_cache, void* v_cache, dtype cache_type, const float* k, const float* v,
                     const std::int32_t* slots, std::int64_t num_tokens, std::int64_t row, std::int64_t num_slots,
                     cudaStream_t stream) {
  if (num_tokens < 0 || row < 0 || num_slots < 0) throw std::invalid_argument("launch_store_kv: bad shape");
  visit_kv_type(cache_type, "launch_store_kv", [&](auto tag) {
    using KV = typename decltype(tag)::type;
    if (num_tokens == 0 || row == 0) return;
    store_kv_kernel<KV><<<static_cast<unsigned>(num_tokens), elementwise_threads, 0, stream>>>(
        static_cast<KV*>(k_cache), static_cast<KV*>(v_cache), k, v, slots, row, num_slots);
    CUDA_CHECK(cudaGetLastError());
  });
}

}  // namespace glm4::kernels::cuda
