// The runtime and cuBLAS halves of the host emulation of CUDA behave as the CUDA backend relies on
// CUDA behaving: memory bookkeeping, the last error, stream capture and replay, and GEMM.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_cuda.hpp"
#include "tests/kernels/emulated_cuda/emulated_runtime.hpp"

namespace glm4::test {
namespace {

using emulated_cuda::enqueue;

std::size_t free_device_bytes() {
  std::size_t free_bytes = 0, total_bytes = 0;
  REQUIRE(cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess);
  CHECK(total_bytes == std::size_t{8} << 30);
  return free_bytes;
}

template <class T>
T* device_alloc(std::size_t count) {
  void* memory = nullptr;
  REQUIRE(cudaMalloc(&memory, count * sizeof(T)) == cudaSuccess);
  return static_cast<T*>(memory);
}

template <class T>
std::vector<T> to_host(const T* device, std::size_t count) {
  std::vector<T> host(count);
  REQUIRE(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
  return host;
}

cudaStream_t make_stream() {
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(stream != nullptr);
  return stream;
}

cudaStreamCaptureStatus capture_status(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  REQUIRE(cudaStreamIsCapturing(stream, &status) == cudaSuccess);
  return status;
}

}  // namespace

TEST_CASE("cudaMalloc gives aligned memory poisoned to NaN, counted by cudaMemGetInfo and freed once",
          "[emulated_cuda]") {
  const std::size_t free_before = free_device_bytes();
  float* p = device_alloc<float>(250);  // 1000 bytes: four 256-byte granules
  CHECK(reinterpret_cast<std::uintptr_t>(p) % 256 == 0);
  CHECK(free_device_bytes() == free_before - 1024);
  for (float value : to_host(p, 250)) CHECK(std::isnan(value));

  float* q = device_alloc<float>(64);
  CHECK(q != p);
  CHECK(free_device_bytes() == free_before - 1024 - 256);
  CHECK(cudaFree(p) == cudaSuccess);
  CHECK(free_device_bytes() == free_before - 256);
  CHECK(cudaFree(q) == cudaSuccess);
  CHECK(free_device_bytes() == free_before);

  cudaGetLastError();
  CHECK(cudaFree(p) == cudaErrorInvalidValue);  // already freed
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaFree(nullptr) == cudaSuccess);
  CHECK(cudaGetLastError() == cudaSuccess);
}

TEST_CASE("cudaMalloc past the device's 8 GiB fails with cudaErrorMemoryAllocation and leaves memory as it was",
          "[emulated_cuda]") {
  const std::size_t free_before = free_device_bytes();
  void* p = nullptr;
  CHECK(cudaMalloc(&p, free_before + 1) == cudaErrorMemoryAllocation);
  CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
  CHECK(free_device_bytes() == free_before);
  CHECK(cudaMalloc(&p, SIZE_MAX) == cudaErrorMemoryAllocation);
  cudaGetLastError();
}

TEST_CASE("the last error is per thread, read and cleared by cudaGetLastError, only read by cudaPeekAtLastError",
          "[emulated_cuda]") {
  cudaGetLastError();
  CHECK(cudaSetDevice(emulated_cuda::emulated_gpu_count()) == cudaErrorInvalidDevice);
  CHECK(cudaSetDevice(0) == cudaSuccess);  // success leaves the pending error alone
  CHECK(cudaPeekAtLastError() == cudaErrorInvalidDevice);
  cudaError_t seen_elsewhere = cudaErrorUnknown;
  std::thread([&] { seen_elsewhere = cudaGetLastError(); }).join();
  CHECK(seen_elsewhere == cudaSuccess);
  CHECK(cudaGetLastError() == cudaErrorInvalidDevice);
  CHECK(cudaGetLastError() == cudaSuccess);

  emulated_cuda::set_last_error(cudaErrorLaunchOutOfResources);
  CHECK(cudaGetLastError() == cudaErrorLaunchOutOfResources);
  CHECK(cudaGetLastError() == cudaSuccess);

  CHECK(std::string(cudaGetErrorName(cudaErrorMemoryAllocation)) == "cudaErrorMemoryAllocation");
  CHECK(std::string(cudaGetErrorString(cudaErrorMemoryAllocation)) == "out of memory");
  CHECK(std::string(cudaGetErrorName(cudaErrorStreamCaptureUnsupported)) == "cudaErrorStreamCaptureUnsupported");
  CHECK(std::string(cudaGetErrorName(static_cast<cudaError_t>(12345))) == "unrecognized error code");
}

TEST_CASE("GLM4_EMULATED_GPUS emulated devices, of the compute capability GLM4_EMULATED_SM names", "[emulated_cuda]") {
  int count = 0;
  CHECK(cudaGetDeviceCount(&count) == cudaSuccess);
  CHECK(count == emulated_cuda::emulated_gpu_count());
  CHECK(emulated_cuda::parse_emulated_gpu_count(nullptr) == 1);
  CHECK(emulated_cuda::parse_emulated_gpu_count("2") == 2);
  CHECK_THROWS_WITH(emulated_cuda::parse_emulated_gpu_count("9"), Catch::Contains("GLM4_EMULATED_GPUS is '9'"));
  CHECK_THROWS_WITH(emulated_cuda::parse_emulated_gpu_count("two"), Catch::Contains("from 1 to 8"));
  cudaDeviceProp props{};
  REQUIRE(cudaGetDeviceProperties(&props, 0) == cudaSuccess);
  const int sm = emulated_cuda::emulated_sm();
  CHECK(props.major * 10 + props.minor == sm);
  CHECK(std::string(props.name) == "glm4 host emulation");
  CHECK(props.multiProcessorCount == emulated_cuda::emulated_sm_count);
  CHECK(props.totalGlobalMem == std::size_t{8} << 30);
  CHECK(props.sharedMemPerBlock == 48 * 1024);
  CHECK(props.maxThreadsPerBlock == 1024);
  CHECK(props.warpSize == 32);
  CHECK(cudaGetDeviceProperties(&props, count) == cudaErrorInvalidDevice);
  CHECK(cudaGetLastError() == cudaErrorInvalidDevice);

  cudaFuncAttributes attributes{};
  const int some_function = 0;
  CHECK(cudaFuncGetAttributes(&attributes, &some_function) == cudaSuccess);
  CHECK(attributes.binaryVersion == sm);
  CHECK(attributes.ptxVersion == sm);
  int access = 1;
  CHECK(cudaDeviceCanAccessPeer(&access, 0, 0) == cudaSuccess);
  CHECK(access == 0);
  int version = 0;
  CHECK(cudaRuntimeGetVersion(&version) == cudaSuccess);
  CHECK(version == CUDART_VERSION);

  CHECK(emulated_cuda::parse_emulated_sm(nullptr) == 90);
  CHECK(emulated_cuda::parse_emulated_sm("") == 90);
  CHECK(emulated_cuda::parse_emulated_sm("75") == 75);
  CHECK(emulated_cuda::parse_emulated_sm("120") == 120);
  for (const char* malformed : {"sm_80", "8.0", "8", "080", "80a", " 80", "1000"})
    CHECK_THROWS_WITH(emulated_cuda::parse_emulated_sm(malformed), Catch::Contains("GLM4_EMULATED_SM"));
}

TEST_CASE("work on a stream that is not capturing runs at once; what it throws reaches the caller",
          "[emulated_cuda]") {
  cudaStream_t stream = make_stream();
  int runs = 0;
  enqueue(stream, [&] { ++runs; });
  enqueue(nullptr, [&] { ++runs; });
  CHECK(runs == 2);
  CHECK_THROWS_WITH(enqueue(stream, [] { throw std::runtime_error("kernel fault"); }), "kernel fault");
  CHECK(cudaStreamSynchronize(stream) == cudaSuccess);
  CHECK(cudaStreamDestroy(stream) == cudaSuccess);
  CHECK(cudaStreamDestroy(stream) == cudaErrorInvalidResourceHandle);
  cudaGetLastError();
}

TEST_CASE("a capture records work instead of running it; each graph launch replays it with the values then",
          "[emulated_cuda]") {
  cudaStream_t stream = make_stream();
  float* device = device_alloc<float>(4);
  std::vector<float> host{1, 2, 3, 4};
  int kernel_runs = 0;

  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  CHECK(capture_status(stream) == cudaStreamCaptureStatusActive);
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaErrorIllegalState);
  cudaGetLastError();
  CHECK(cudaMemcpyAsync(device, host.data(), 16, cudaMemcpyHostToDevice, stream) == cudaSuccess);
  enqueue(stream, [&] {
    ++kernel_runs;
    for (int i = 0; i < 4; ++i) device[i] *= 10.0f;
  });
  CHECK(cudaMemsetAsync(device + 3, 0, sizeof(float), stream) == cudaSuccess);
  CHECK(kernel_runs == 0);
  CHECK(std::isnan(device[0]));  // nothing ran yet (device memory is host memory here)
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  REQUIRE(graph != nullptr);
  CHECK(capture_status(stream) == cudaStreamCaptureStatusNone);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  CHECK(cudaGraphDestroy(graph) == cudaSuccess);  // the exec keeps its own copy

  host = {5, 6, 7, 8};
  REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
  CHECK(cudaStreamSynchronize(stream) == cudaSuccess);
  CHECK(kernel_runs == 1);
  CHECK(to_host(device, 4) == std::vector<float>{50, 60, 70, 0});
  host = {-1, -2, -3, -4};
  REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
  CHECK(kernel_runs == 2);
  CHECK(to_host(device, 4) == std::vector<float>{-10, -20, -30, 0});

  SECTION("a graph launched into a capturing stream is captured in turn") {
    cudaStream_t outer = make_stream();
    REQUIRE(cudaStreamBeginCapture(outer, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    REQUIRE(cudaGraphLaunch(exec, outer) == cudaSuccess);
    CHECK(kernel_runs == 2);
    cudaGraph_t nested = nullptr;
    REQUIRE(cudaStreamEndCapture(outer, &nested) == cudaSuccess);
    cudaGraphExec_t nested_exec = nullptr;
    REQUIRE(cudaGraphInstantiate(&nested_exec, nested, 0) == cudaSuccess);
    host = {1, 1, 1, 1};
    REQUIRE(cudaGraphLaunch(nested_exec, stream) == cudaSuccess);
    CHECK(kernel_runs == 3);
    CHECK(to_host(device, 4) == std::vector<float>{10, 10, 10, 0});
    cudaGraphExecDestroy(nested_exec);
    cudaGraphDestroy(nested);
    cudaStreamDestroy(outer);
  }
  SECTION("a recorded fault surfaces at the launch that replays it") {
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    enqueue(stream, [] { throw std::runtime_error("illegal address"); });
    cudaGraph_t faulty = nullptr;
    REQUIRE(cudaStreamEndCapture(stream, &faulty) == cudaSuccess);
    cudaGraphExec_t faulty_exec = nullptr;
    REQUIRE(cudaGraphInstantiate(&faulty_exec, faulty, 0) == cudaSuccess);
    CHECK_THROWS_WITH(cudaGraphLaunch(faulty_exec, stream), "illegal address");
    cudaGraphExecDestroy(faulty_exec);
    cudaGraphDestroy(faulty);
  }
  SECTION("a recorded copy that replays after its memory was freed fails the launch") {
    float* doomed = device_alloc<float>(1);
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    REQUIRE(cudaMemcpyAsync(doomed, host.data(), sizeof(float), cudaMemcpyHostToDevice, stream) == cudaSuccess);
    cudaGraph_t copy = nullptr;
    REQUIRE(cudaStreamEndCapture(stream, &copy) == cudaSuccess);
    cudaGraphExec_t copy_exec = nullptr;
    REQUIRE(cudaGraphInstantiate(&copy_exec, copy, 0) == cudaSuccess);
    REQUIRE(cudaFree(doomed) == cudaSuccess);
    CHECK_THROWS_WITH(cudaGraphLaunch(copy_exec, stream), Catch::Contains("outside any live cudaMalloc allocation"));
    cudaGraphExecDestroy(copy_exec);
    cudaGraphDestroy(copy);
  }
  cudaGraphExecDestroy(exec);
  cudaFree(device);
  cudaStreamDestroy(stream);
}

TEST_CASE("what a capture refuses invalidates it, as CUDA does", "[emulated_cuda]") {
  cudaStream_t stream = make_stream();
  cudaGetLastError();
  cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(&stream);  // not null, to see it cleared

  SECTION("waiting on the capturing stream") {
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CHECK(cudaStreamSynchronize(stream) == cudaErrorStreamCaptureUnsupported);
    CHECK(cudaGetLastError() == cudaErrorStreamCaptureUnsupported);
  }
  SECTION("cudaMalloc on the capturing thread") {
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    void* p = nullptr;
    CHECK(cudaMalloc(&p, 256) == cudaErrorStreamCaptureUnsupported);
    cudaGetLastError();
  }
  CHECK(capture_status(stream) == cudaStreamCaptureStatusInvalidated);
  int runs = 0;
  enqueue(stream, [&] { ++runs; });
  CHECK(runs == 0);
  CHECK(cudaGetLastError() == cudaErrorStreamCaptureInvalidated);
  CHECK(cudaStreamEndCapture(stream, &graph) == cudaErrorStreamCaptureInvalidated);
  CHECK(graph == nullptr);
  CHECK(capture_status(stream) == cudaStreamCaptureStatusNone);
  enqueue(stream, [&] { ++runs; });
  CHECK(runs == 1);  // the stream works again
  cudaGetLastError();
  cudaStreamDestroy(stream);
}

TEST_CASE("cudaMalloc is allowed during a relaxed capture and during another thread's thread-local one",
          "[emulated_cuda]") {
  cudaStream_t stream = make_stream();
  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed) == cudaSuccess);
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 256) == cudaSuccess);
  CHECK(cudaFree(p) == cudaSuccess);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  cudaGraphDestroy(graph);

  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  cudaError_t elsewhere = cudaErrorUnknown;
  std::thread([&] {
    void* q = nullptr;
    elsewhere = cudaMalloc(&q, 256);
    cudaFree(q);
  }).join();
  CHECK(elsewhere == cudaSuccess);
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST_CASE("copies must stay inside the device allocations they name", "[emulated_cuda]") {
  float* device = device_alloc<float>(4);
  std::vector<float> host(8, 1.0f);
  cudaGetLastError();
  CHECK(cudaMemcpy(device, host.data(), 5 * sizeof(float), cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaMemcpy(host.data(), device + 1, 4 * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
  CHECK(cudaMemsetAsync(device, 0, 17, nullptr) == cudaErrorInvalidValue);
  CHECK(cudaMemcpy(device, host.data(), 4 * sizeof(float), cudaMemcpyDefault) == cudaSuccess);
  CHECK(cudaMemcpy(device, host.data(), 0, cudaMemcpyHostToDevice) == cudaSuccess);
  CHECK(cudaMemcpy(device, host.data(), 4, static_cast<cudaMemcpyKind>(9)) == cudaErrorInvalidMemcpyDirection);
  cudaGetLastError();
  cudaFree(device);
}

namespace {

// Values that each input type holds exactly, so the reference sees what the GEMM sees.
float representable(float value, cudaDataType type) {
  switch (type) {
    case CUDA_R_16F: return __half2float(__float2half_rn(value));
    case CUDA_R_16BF: return __bfloat162float(__float2bfloat16_rn(value));
    default: return value;
  }
}

void* device_matrix(const std::vector<float>& values, cudaDataType type) {
  std::vector<unsigned char> bytes(values.size() * (type == CUDA_R_32F ? 4 : 2));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (type == CUDA_R_16F) {
      const __half h = __float2half_rn(values[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    } else if (type == CUDA_R_16BF) {
      const __nv_bfloat16 b = __float2bfloat16_rn(values[i]);
      std::memcpy(bytes.data() + 2 * i, &b, 2);
    } else {
      std::memcpy(bytes.data() + 4 * i, &values[i], 4);
    }
  }
  void* device = nullptr;
  REQUIRE(cudaMalloc(&device, bytes.size()) == cudaSuccess);
  REQUIRE(cudaMemcpy(device, bytes.data(), bytes.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  return device;
}

}  // namespace

TEST_CASE("cublasGemmEx computes alpha op(A) op(B) + beta C column-major for N/T and F32/F16/BF16 inputs",
          "[emulated_cuda][cublas]") {
  cublasHandle_t handle = nullptr;
  REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS);
  cudaStream_t stream = make_stream();
  REQUIRE(cublasSetStream(handle, stream) == CUBLAS_STATUS_SUCCESS);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  const int m = 5, n = 7, k = 19;
  for (cudaDataType type : {CUDA_R_32F, CUDA_R_16F, CUDA_R_16BF})
    for (cublasOperation_t op_a : {CUBLAS_OP_N, CUBLAS_OP_T})
      for (cublasOperation_t op_b : {CUBLAS_OP_N, CUBLAS_OP_T})
        for (float beta : {0.0f, 0.5f}) {
          CAPTURE(type, op_a, op_b, beta);
          // Stored with leading dimensions past the minimum, to tell rows from columns.
          const int a_rows = op_a == CUBLAS_OP_N ? m : k, a_cols = op_a == CUBLAS_OP_N ? k : m, lda = a_rows + 3;
          const int b_rows = op_b == CUBLAS_OP_N ? k : n, b_cols = op_b == CUBLAS_OP_N ? n : k, ldb = b_rows + 2;
          const int ldc = m + 1;
          std::vector<float> a(static_cast<std::size_t>(lda * a_cols)), b(static_cast<std::size_t>(ldb * b_cols));
          for (float& v : a) v = representable(uniform(rng), type);
          for (float& v : b) v = representable(uniform(rng), type);
          std::vector<float> c(static_cast<std::size_t>(ldc * n));
          for (float& v : c) v = uniform(rng);
          void* d_a = device_matrix(a, type);
          void* d_b = device_matrix(b, type);
          float* d_c = device_alloc<float>(c.size());  // poisoned: with beta 0 it must not be read
          if (beta != 0.0f) REQUIRE(cudaMemcpy(d_c, c.data(), c.size() * 4, cudaMemcpyHostToDevice) == cudaSuccess);
          const float alpha = 1.5f;
          REQUIRE(cublasGemmEx(handle, op_a, op_b, m, n, k, &alpha, d_a, type, lda, d_b, type, ldb, &beta, d_c,
                               CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
          const std::vector<float> got = to_host(d_c, c.size());
          for (int j = 0; j < n; ++j)
            for (int i = 0; i < m; ++i) {
              double sum = 0.0;
              for (int l = 0; l < k; ++l) {
                const double a_il = op_a == CUBLAS_OP_N ? a[i + l * lda] : a[l + i * lda];
                const double b_lj = op_b == CUBLAS_OP_N ? b[l + j * ldb] : b[j + l * ldb];
                sum += a_il * b_lj;
              }
              const double want = alpha * sum + (beta != 0.0f ? beta * c[i + j * ldc] : 0.0);
              CHECK(got[i + j * ldc] == Approx(want).margin(1e-5));
            }
          // The padding rows of C are left alone.
          if (beta == 0.0f) CHECK(std::isnan(got[m]));
          cudaFree(d_a);
          cudaFree(d_b);
          cudaFree(d_c);
        }
  cublasDestroy(handle);
  cudaStreamDestroy(stream);
}

TEST_CASE("cublasGemmEx refuses bad dimensions and unsupported types as cuBLAS does", "[emulated_cuda][cublas]") {
  cublasHandle_t handle = nullptr;
  REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS);
  float* d = device_alloc<float>(64);
  const float alpha = 1.0f, beta = 0.0f;
  const auto gemm = [&](cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k, int lda, int ldb, int ldc,
                        cudaDataType a_type = CUDA_R_32F, cudaDataType c_type = CUDA_R_32F,
                        cublasComputeType_t compute = CUBLAS_COMPUTE_32F) {
    return cublasGemmEx(handle, op_a, op_b, m, n, k, &alpha, d, a_type, lda, d, a_type, ldb, &beta, d, c_type, ldc,
                        compute, CUBLAS_GEMM_DEFAULT);
  };
  const auto N = CUBLAS_OP_N, T = CUBLAS_OP_T;
  CHECK(gemm(N, N, 4, 2, 3, 4, 3, 4) == CUBLAS_STATUS_SUCCESS);
  CHECK(gemm(N, N, 4, 2, 3, 3, 3, 4) == CUBLAS_STATUS_INVALID_VALUE);  // lda < m
  CHECK(gemm(T, N, 4, 2, 3, 3, 3, 4) == CUBLAS_STATUS_SUCCESS);        // op T: lda >= k
  CHECK(gemm(T, N, 4, 2, 3, 2, 3, 4) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(N, N, 4, 2, 3, 4, 2, 4) == CUBLAS_STATUS_INVALID_VALUE);  // ldb < k
  CHECK(gemm(N, T, 4, 2, 3, 4, 2, 4) == CUBLAS_STATUS_SUCCESS);        // op T: ldb >= n
  CHECK(gemm(N, T, 4, 2, 3, 4, 1, 4) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(N, N, 4, 2, 3, 4, 3, 3) == CUBLAS_STATUS_INVALID_VALUE);  // ldc < m
  CHECK(gemm(N, N, 0, 0, 0, 0, 0, 0) == CUBLAS_STATUS_INVALID_VALUE);  // leading dimensions are at least 1
  CHECK(gemm(N, N, 0, 0, 0, 1, 1, 1) == CUBLAS_STATUS_SUCCESS);
  CHECK(gemm(N, N, -1, 2, 3, 4, 3, 4) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(N, N, 4, 2, -3, 4, 3, 4) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(static_cast<cublasOperation_t>(7), N, 4, 2, 3, 4, 3, 4) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(gemm(N, N, 4, 2, 3, 4, 3, 4, CUDA_R_16F, CUDA_R_16F) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(gemm(N, N, 4, 2, 3, 4, 3, 4, CUDA_R_8I) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(gemm(N, N, 4, 2, 3, 4, 3, 4, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_16F) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(cublasGemmEx(handle, N, N, 4, 2, 3, &alpha, d, CUDA_R_16F, 4, d, CUDA_R_16BF, 3, &beta, d, CUDA_R_32F, 4,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED);
  // Dimensions that reach past the memory a GPU would fault on.
  CHECK_THROWS_WITH(gemm(N, N, 8, 8, 8, 9, 8, 8), Catch::Contains("not inside one live cudaMalloc allocation"));
  CHECK(std::string(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE)) == "CUBLAS_STATUS_INVALID_VALUE");
  cudaFree(d);
  cublasDestroy(handle);
}

TEST_CASE("a captured cublasGemmEx replays on the inputs at launch, with alpha and beta from the call",
          "[emulated_cuda][cublas]") {
  cublasHandle_t handle = nullptr;
  REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS);
  cudaStream_t stream = make_stream();
  REQUIRE(cublasSetStream(handle, stream) == CUBLAS_STATUS_SUCCESS);
  float* a = device_alloc<float>(2);  // 1 x 2
  float* b = device_alloc<float>(2);  // 2 x 1
  float* c = device_alloc<float>(1);
  std::vector<float> a_values{1, 2}, b_values{3, 4};
  REQUIRE(cudaMemcpy(b, b_values.data(), 8, cudaMemcpyHostToDevice) == cudaSuccess);

  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(a, a_values.data(), 8, cudaMemcpyHostToDevice, stream) == cudaSuccess);
  float alpha = 2.0f, beta = 0.0f;
  REQUIRE(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, &alpha, a, CUDA_R_32F, 1, b, CUDA_R_32F, 2, &beta, c,
                       CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  CHECK(std::isnan(c[0]));  // device memory is host memory here
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  alpha = 100.0f;  // read at the call, not at the launch
  a_values = {5, 6};
  REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
  CHECK(to_host(c, 1)[0] == 2.0f * (5 * 3 + 6 * 4));

  SECTION("a GEMM into an invalidated capture is a failed execution") {
    REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    CHECK(cudaStreamSynchronize(stream) == cudaErrorStreamCaptureUnsupported);
    CHECK(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, &alpha, a, CUDA_R_32F, 1, b, CUDA_R_32F, 2, &beta,
                       c, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_EXECUTION_FAILED);
    cudaGraph_t none = nullptr;
    CHECK(cudaStreamEndCapture(stream, &none) == cudaErrorStreamCaptureInvalidated);
    cudaGetLastError();
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  cudaStreamDestroy(stream);
  cublasDestroy(handle);
}

}  // namespace glm4::test
