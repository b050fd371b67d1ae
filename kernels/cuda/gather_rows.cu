#include "kernels/cuda/gather_rows.cuh"

#include <stdexcept>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/launch_config.cuh"

namespace glm4::kernels::cuda {
namespace {

__global__ void gather_rows_kernel(float* out, const float* x, const std::int32_t* rows, std::int64_t num_x_rows,
                                   std::int64_t hidden) {
  const std::int64_t r = blockIdx.x;
  const std::int64_t row = rows[r];
  const bool valid = row >= 0 && row < num_x_rows;
  for (std::int64_t i = threadIdx.x; i < hidden; i += blockDim.x)
    out[r * hidden + i] = valid ? x[row * hidden + i] : __int_as_float(0x7fc00000);
}

}  // namespace

void launch_gather_rows(float* out, const float* x, const std::int32_t* rows, std::int64_t num_rows,
                        std::int64_t num_x_rows, std::int64_t hidden, cudaStream_t stream) {
  if (num_rows < 0 || num_x_rows < 0 || hidden < 0) throw std::invalid_argument("launch_gather_rows: bad shape");
  if (num_rows == 0 || hidden == 0) return;
  gather_rows_kernel<<<static_cast<unsigned>(num_rows), elementwise_threads, 0, stream>>>(out, x, rows, num_x_rows,
                                                                                          hidden);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
