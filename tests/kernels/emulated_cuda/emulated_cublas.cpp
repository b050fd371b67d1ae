// cuBLAS of the host emulation (emulated_cuda.hpp), linked instead of libcublas: handles that hold a
// stream, and cublasGemmEx for F32, F16 and BF16 inputs with F32 output and FP32 accumulation.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_cuda.hpp"
#include "tests/kernels/emulated_cuda/emulated_runtime.hpp"

struct cublasContext {
  int device = 0;  // current at cublasCreate: the handle works on that GPU only
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
};

namespace {

std::size_t element_bytes(cudaDataType type) { return type == CUDA_R_32F ? 4 : 2; }

float load(const void* data, std::size_t index, cudaDataType type) {
  switch (type) {
    case CUDA_R_16F: return __half2float(static_cast<const __half*>(data)[index]);
    case CUDA_R_16BF: return __bfloat162float(static_cast<const __nv_bfloat16*>(data)[index]);
    default: return static_cast<const float*>(data)[index];
  }
}

// A column-major matrix as cuBLAS is handed it: `rows` x `cols` elements, columns `ld` apart.
struct stored_matrix {
  const void* data;
  cudaDataType type;
  std::int64_t rows, cols, ld;

  std::size_t span_bytes() const {
    if (rows == 0 || cols == 0) return 0;
    return static_cast<std::size_t>((cols - 1) * ld + rows) * element_bytes(type);
  }
};

// A GPU would fault reading past an allocation, or another GPU's memory without peer access; here the
// read would quietly succeed.
void expect_device_memory(const char* what, const void* data, std::size_t bytes, int device) {
  if (bytes == 0) return;
  if (!glm4::emulated_cuda::in_device_allocation(data, bytes))
    throw std::runtime_error(std::string("emulated cublasGemmEx: ") + what + " (" + std::to_string(bytes) +
                             " bytes as its dimensions and leading dimension give) is not inside one live cudaMalloc "
                             "allocation");
  if (const std::optional<int> owner = glm4::emulated_cuda::allocation_gpu(data); owner != device)
    throw std::runtime_error(std::string("emulated cublasGemmEx: ") + what + " is on GPU " + std::to_string(*owner) +
                             ", the handle's GPU is " + std::to_string(device));
}

// The matrix as `count` vectors of `length` floats: its columns (by_columns) or its rows, so that
// the dot products of the GEMM read contiguous memory.
std::vector<float> as_vectors(const stored_matrix& m, bool by_columns) {
  const std::int64_t count = by_columns ? m.cols : m.rows, length = by_columns ? m.rows : m.cols;
  std::vector<float> out(static_cast<std::size_t>(count * length));
  for (std::int64_t v = 0; v < count; ++v)
    for (std::int64_t i = 0; i < length; ++i) {
      const std::int64_t row = by_columns ? i : v, col = by_columns ? v : i;
      out[static_cast<std::size_t>(v * length + i)] = load(m.data, static_cast<std::size_t>(row + col * m.ld), m.type);
    }
  return out;
}

// FP32 accumulation, as cuBLAS's CUBLAS_COMPUTE_32F; eight running sums, as a GPU splits K.
float dot(const float* a, const float* b, std::int64_t length) {
  constexpr int lanes = 8;
  float partial[lanes] = {};
  std::int64_t i = 0;
  for (; i + lanes <= length; i += lanes)
    for (int lane = 0; lane < lanes; ++lane) partial[lane] += a[i + lane] * b[i + lane];
  float sum = 0.0f;
  for (float p : partial) sum += p;
  for (; i < length; ++i) sum += a[i] * b[i];
  return sum;
}

bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

bool supported_input(cudaDataType type) { return type == CUDA_R_32F || type == CUDA_R_16F || type == CUDA_R_16BF; }

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext;
  (*handle)->device = glm4::emulated_cuda::current_gpu();
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = streamId;
  return CUBLAS_STATUS_SUCCESS;
}

// Nothing here needs the workspace; cuBLAS's rule on its alignment is kept all the same.
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0) return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspace_bytes = workspaceSizeInBytes;
  return CUBLAS_STATUS_SUCCESS;
}

// C = alpha * op(A) * op(B) + beta * C, column-major, alpha and beta read from host memory at the
// call (so a captured GEMM replays with those values). The algorithm only picks a kernel: ignored.
// As BLAS specifies, C is not read when beta is 0, nor A and B when alpha is 0 or k is 0.
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t /*algo*/) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const bool a_plain = transa == CUBLAS_OP_N, b_plain = transb == CUBLAS_OP_N;
  if (lda < std::max(1, a_plain ? m : k) || ldb < std::max(1, b_plain ? k : n) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (alpha == nullptr || beta == nullptr || (C == nullptr && m > 0 && n > 0)) return CUBLAS_STATUS_INVALID_VALUE;
  if (Atype != Btype || !supported_input(Atype) || Ctype != CUDA_R_32F ||
      (computeType != CUBLAS_COMPUTE_32F && computeType != CUBLAS_COMPUTE_32F_PEDANTIC))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  // Before sm_80 the backend must store BF16 weights as F16 (no native BF16): a BF16 GEMM there is its bug.
  if (Atype == CUDA_R_16BF && glm4::emulated_cuda::emulated_sm() < 80) return CUBLAS_STATUS_ARCH_MISMATCH;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;

  const float alpha_value = *static_cast<const float*>(alpha), beta_value = *static_cast<const float*>(beta);
  // op(A) is m x k: stored m x k as is, or k x m transposed; op(B) is k x n likewise.
  const stored_matrix a{A, Atype, a_plain ? m : k, a_plain ? k : m, lda};
  const stored_matrix b{B, Btype, b_plain ? k : n, b_plain ? n : k, ldb};
  const stored_matrix c{C, Ctype, m, n, ldc};
  // cuBLAS launches on the handle's GPU; a thread whose current GPU is another one has a bug.
  if (glm4::emulated_cuda::current_gpu() != handle->device) return CUBLAS_STATUS_EXECUTION_FAILED;
  const int device = handle->device;
  const cudaError_t submitted = glm4::emulated_cuda::try_enqueue(handle->stream, [=] {
    const bool products = k > 0 && alpha_value != 0.0f;
    if (products) {
      expect_device_memory("A", a.data, a.span_bytes(), device);
      expect_device_memory("B", b.data, b.span_bytes(), device);
    }
    expect_device_memory("C", c.data, c.span_bytes(), device);
    // Rows of op(A) and columns of op(B), each k long.
    const std::vector<float> a_rows = products ? as_vectors(a, !a_plain) : std::vector<float>{};
    const std::vector<float> b_cols = products ? as_vectors(b, b_plain) : std::vector<float>{};
    float* out = static_cast<float*>(C);
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < m; ++i) {
        const float product =
            products ? alpha_value * dot(a_rows.data() + i * k, b_cols.data() + j * k, k) : 0.0f;
        float& target = out[i + j * static_cast<std::int64_t>(ldc)];
        target = beta_value == 0.0f ? product : product + beta_value * target;
      }
  });
  // A launch the stream refuses (an invalidated capture) is a failed execution to cuBLAS.
  return submitted == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

#define GLM4_EMULATED_CUBLAS_STATUSES(X)                                 \
  X(CUBLAS_STATUS_SUCCESS, "the operation completed successfully")       \
  X(CUBLAS_STATUS_NOT_INITIALIZED, "the library was not initialized")    \
  X(CUBLAS_STATUS_ALLOC_FAILED, "the resource allocation failed")        \
  X(CUBLAS_STATUS_INVALID_VALUE, "an invalid numeric value was used as an argument") \
  X(CUBLAS_STATUS_ARCH_MISMATCH, "an absent device architectural feature is required") \
  X(CUBLAS_STATUS_MAPPING_ERROR, "an access to GPU memory space failed") \
  X(CUBLAS_STATUS_EXECUTION_FAILED, "the GPU program failed to execute") \
  X(CUBLAS_STATUS_INTERNAL_ERROR, "an internal operation failed")        \
  X(CUBLAS_STATUS_NOT_SUPPORTED, "the functionality requested is not supported") \
  X(CUBLAS_STATUS_LICENSE_ERROR, "error detected trying to check the license")

#define GLM4_STATUS_NAME(status, text) \
  case status: return #status;
#define GLM4_STATUS_TEXT(status, text) \
  case status: return text;

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    GLM4_EMULATED_CUBLAS_STATUSES(GLM4_STATUS_NAME)
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    GLM4_EMULATED_CUBLAS_STATUSES(GLM4_STATUS_TEXT)
    default: return "unknown error";
  }
}

}  // extern "C"
