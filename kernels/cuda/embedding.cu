#include "kernels/cuda/embedding.cuh"

#include <stdexcept>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/launch_config.cuh"
#include "kernels/cuda/load_weight.cuh"

namespace glm4::kernels::cuda {
namespace {

// One block per token; threads stride over the hidden dims.
__global__ void embedding_kernel(float* out, const void* table, dtype table_type, const std::int32_t* ids,
                                 std::int64_t vocab, std::int64_t hidden) {
  const std::int64_t t = blockIdx.x;
  const std::int64_t id = ids[t];
  float* dst = out + t * hidden;
  const bool valid = id >= 0 && id < vocab;
  for (std::int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    dst[i] = valid ? load_weight(table, id * hidden + i, table_type) : __int_as_float(0x7fc00000);
}

}  // namespace

void launch_embedding(float* out, const void* table, dtype table_type, const std::int32_t* ids, std::int64_t num_tokens,
                      std::int64_t vocab, std::int64_t hidden, cudaStream_t stream) {
  if (num_tokens < 0 || vocab < 0 || hidden < 0) throw std::invalid_argument("launch_embedding: bad shape");
  if (table_type == dtype::i32) throw std::invalid_argument("launch_embedding: table must be a float type");
  if (num_tokens == 0 || hidden == 0) return;
  embedding_kernel<<<static_cast<unsigned>(num_tokens), elementwise_threads, 0, stream>>>(out, table, table_type, ids,
                                                                                          vocab, hidden);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
