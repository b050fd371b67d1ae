// Which kernel a CUDA backend multiplies a small batch by (no CUDA headers, for the backend's users).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "kernels/dtype.hpp"

namespace glm4::kernels::cuda {

/// cublas: every matmul is a cuBLAS GEMM (the default). matvec: batches of up to max_matvec_rows rows
/// against F16/BF16 weights go through matvec.cuh instead, which reads each weight row once for all
/// rows and keeps the activations in F32. Decode at batch 1 reads every weight once per token, so
/// which one comes nearer the memory bandwidth decides its speed; the comparison is owed to a GPU run.
enum class matmul_kernel { cublas, matvec };

inline constexpr std::int64_t max_matvec_rows = 8;

/// "cublas" or "matvec"; nullopt for anything else.
inline std::optional<matmul_kernel> parse_matmul_kernel(std::string_view name) {
  if (name == "cublas") return matmul_kernel::cublas;
  if (name == "matvec") return matmul_kernel::matvec;
  return std::nullopt;
}

/// Whether `kernel` multiplies `rows` rows against weights stored as `weight_type` by matvec.
inline bool uses_matvec(matmul_kernel kernel, std::int64_t rows, dtype weight_type) {
  return kernel == matmul_kernel::matvec && rows >= 1 && rows <= max_matvec_rows &&
         (weight_type == dtype::bf16 || weight_type == dtype::f16);
}

}  // namespace glm4::kernels::cuda
