// Writes a step's keys and values into the paged KV cache on the GPU.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

/// k, v (num_tokens, row) F32 with row = Hkv * D go to the caches (num_slots, row) of cache_type
/// (F32, F16 or BF16; kv_element.cuh narrows) at slots[t]. A device-side slot outside
/// [0, num_slots) is skipped (the host validated the batch).
void launch_store_kv(void* k_cache, void* v_cache, dtype cache_type, const float* k, const float* v,
                     const std::int32_t* slots, std::int64_t num_tokens, std::int64_t row, std::int64_t num_slots,
                     cudaStream_t stream);

}  // namespace glm4::kernels::cuda
