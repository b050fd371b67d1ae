// The host emulation of CUDA runs kernels as CUDA would, and catches what a GPU would not forgive.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_cuda.hpp"
#include "tests/kernels/cuda/gpu_test_support.hpp"
#include "tests/kernels/emulated_cuda/probe_kernels.cuh"

namespace glm4::emulated_cuda {
namespace {

using test::device_vector;

std::vector<float> iota_floats(std::size_t count) {
  std::vector<float> v(count);
  std::iota(v.begin(), v.end(), 1.0f);
  return v;
}

TEST_CASE("emulated kernels: a shared-memory reduction with its barriers is exact in every block", "[emulated_cuda]") {
  const int blocks = 3, threads = 64;
  const auto in = iota_floats(blocks * threads);
  const device_vector<float> device_in(in), out(blocks);
  probe::launch_block_sum(out.get(), device_in.get(), blocks, threads, true, nullptr);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  const auto sums = out.to_host();
  for (int b = 0; b < blocks; ++b)
    CHECK(sums[b] == std::accumulate(in.begin() + b * threads, in.begin() + (b + 1) * threads, 0.0f));
}

TEST_CASE("emulated kernels: the same reduction without barriers gives wrong sums", "[emulated_cuda]") {
  const int blocks = 2, threads = 64;
  const auto in = iota_floats(blocks * threads);
  const device_vector<float> device_in(in), out(blocks);
  probe::launch_block_sum(out.get(), device_in.get(), blocks, threads, false, nullptr);
  const auto sums = out.to_host();
  for (int b = 0; b < blocks; ++b) {
    INFO("block " << b);
    // NaN (a read of shared memory not yet written) or a partial sum.
    CHECK_FALSE(sums[b] == std::accumulate(in.begin() + b * threads, in.begin() + (b + 1) * threads, 0.0f));
  }
}

TEST_CASE("emulated kernels: a __syncthreads only half the block reaches is refused", "[emulated_cuda]") {
  REQUIRE_THROWS_WITH(probe::launch_divergent_barrier(64, nullptr),
                      Catch::Contains("__syncthreads") && Catch::Contains("32 threads at __syncthreads"));
}

TEST_CASE("emulated kernels: warp shuffles exchange lanes within their width", "[emulated_cuda]") {
  const auto in = iota_floats(32);
  const device_vector<float> device_in(in), out(32);
  for (const int width : {32, 16, 8}) {
    probe::launch_warp_sum(out.get(), device_in.get(), width, nullptr);
    const auto sums = out.to_host();
    for (int lane = 0; lane < 32; ++lane) {
      const int first = lane / width * width;
      INFO("width " << width << " lane " << lane);
      CHECK(sums[lane] == std::accumulate(in.begin() + first, in.begin() + first + width, 0.0f));
    }
  }
  probe::launch_warp_rotate(out.get(), device_in.get(), 5, nullptr);
  const auto rotated = out.to_host();
  for (int lane = 0; lane < 32; ++lane) CHECK(rotated[lane] == in[(lane + 5) % 32]);
}

TEST_CASE("emulated kernels: dynamic and static shared memory start as NaN in every block", "[emulated_cuda]") {
  const device_vector<int> out(std::vector<int>{0, 0});
  probe::launch_shared_is_poisoned(out.get(), 1024, nullptr);
  CHECK(out.to_host() == std::vector<int>{1, 1});
}

TEST_CASE("emulated kernels: CUB block reduce and scan", "[emulated_cuda]") {
  std::vector<int> in(probe::cub_threads);
  for (int i = 0; i < probe::cub_threads; ++i) in[i] = (i * 7) % 5 - 1;
  const device_vector<int> device_in(in), out(1 + probe::cub_threads);
  probe::launch_cub_sums(out.get(), device_in.get(), nullptr);
  const auto sums = out.to_host();
  CHECK(sums[0] == std::accumulate(in.begin(), in.end(), 0));
  int before = 0;
  for (int i = 0; i < probe::cub_threads; ++i) {
    CHECK(sums[1 + i] == before);
    before += in[i];
  }
}

TEST_CASE("emulated kernels: shapes CUDA refuses are launch errors, not runs", "[emulated_cuda]") {
  const device_vector<float> out(std::vector<float>(4, 0.0f));
  REQUIRE(cudaGetLastError() == cudaSuccess);
  probe::launch_fill(out.get(), 1.0f, 0, 32, nullptr);  // a grid of 0 blocks
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(cudaGetLastError() == cudaSuccess);  // read once, then cleared
  probe::launch_fill(out.get(), 1.0f, 4, 2048, nullptr);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(out.to_host() == std::vector<float>(4, 0.0f));
  probe::launch_fill(out.get(), 1.0f, 4, 1024, nullptr);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(out.to_host() == std::vector<float>(4, 1.0f));
  const device_vector<int> flags(std::vector<int>{0, 0});
  probe::launch_shared_is_poisoned(flags.get(), 64 * 1024, nullptr);  // past 48 KiB
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK(flags.to_host() == std::vector<int>{0, 0});
}

TEST_CASE("emulated kernels: a launch of more threads than the kernel's __launch_bounds__ is refused, naming it",
          "[emulated_cuda]") {
  using launch = void (*)(float*, float, int, int, cudaStream_t);
  const launch bounded = GENERATE(as<launch>{}, probe::launch_bounded_fill, probe::launch_bounded_fill_template);
  device_vector<float> out(std::vector<float>(256, 0.0f));
  bounded(out.get(), 1.0f, 256, probe::bounded_fill_threads, nullptr);
  CHECK(out.to_host() == std::vector<float>(256, 1.0f));
  REQUIRE_THROWS_WITH(bounded(out.get(), 2.0f, 256, 2 * probe::bounded_fill_threads, nullptr),
                      Catch::Contains("the kernel at ") && Catch::Contains("probe_kernels.cu:") &&
                          Catch::Contains("launched with 128 threads per block, more than its "
                                          "__launch_bounds__ (64)"));
  CHECK(out.to_host() == std::vector<float>(256, 1.0f));  // no block ran
}

TEST_CASE("emulated kernels: a host pointer passed to a kernel is refused", "[emulated_cuda]") {
  std::vector<float> host(4, 0.0f);
  REQUIRE_THROWS_WITH(probe::launch_fill(host.data(), 1.0f, 4, 32, nullptr),
                      Catch::Contains("argument 1 is not device memory"));
  CHECK(host == std::vector<float>(4, 0.0f));
}

TEST_CASE("emulated kernels: writes around a buffer's ends are reported naming the launch; reads there see NaN",
          "[emulated_cuda]") {
  // 10 floats: 40 bytes of a 256-byte granule, the rest of its page before it.
  device_vector<float> out(std::vector<float>(10, 0.0f));
  probe::launch_fill(out.get(), 1.0f, 10, 32, nullptr);
  CHECK(out.to_host() == std::vector<float>(10, 1.0f));
  REQUIRE_THROWS_WITH(probe::launch_fill(out.get(), 2.0f, 11, 32, nullptr),
                      Catch::Contains("probe_kernels.cu:") && Catch::Contains("(argument 1) wrote at byte 40, past the end "
                                                                             "of its 40-byte cudaMalloc allocation"));

  device_vector<float> other(std::vector<float>(10, 0.0f));
  REQUIRE_THROWS_WITH(probe::launch_fill_from(other.get(), 2.0f, -1, 3, nullptr),
                      Catch::Contains("wrote at byte -4, before the start of its 40-byte cudaMalloc allocation"));

  // Reads a GPU would not fault on either: the slack on both sides holds NaN bytes, which a kernel
  // test comparing with the CPU backend then sees.
  const device_vector<float> in(std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f});
  device_vector<float> copied(std::vector<float>(5, 0.0f));
  probe::launch_copy_shifted(copied.get(), in.get(), 5, -1, nullptr);
  const std::vector<float> shifted = copied.to_host();
  CHECK(std::isnan(shifted[0]));
  CHECK(std::vector<float>(shifted.begin() + 1, shifted.end() - 1) == std::vector<float>{1.0f, 2.0f, 3.0f});
  CHECK(shifted[4] == 4.0f);
  probe::launch_copy_shifted(copied.get(), in.get(), 5, 0, nullptr);
  CHECK(std::isnan(copied.to_host()[4]));
}

TEST_CASE("emulated kernels: another GPU's stream or memory is refused, as without peer access", "[emulated_cuda]") {
  int count = 0;
  REQUIRE(cudaGetDeviceCount(&count) == cudaSuccess);
  INFO("run with GLM4_EMULATED_GPUS=2 (ctest sets it)");
  REQUIRE(count >= 2);
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  cudaStream_t gpu0_stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&gpu0_stream, cudaStreamNonBlocking) == cudaSuccess);
  const device_vector<float> on_gpu0(std::vector<float>(4, 0.0f));
  REQUIRE(cudaSetDevice(1) == cudaSuccess);
  cudaGetLastError();
  probe::launch_fill(on_gpu0.get(), 1.0f, 4, 32, gpu0_stream);  // GPU 1 current, GPU 0's stream
  CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle);
  REQUIRE_THROWS_WITH(probe::launch_fill(on_gpu0.get(), 1.0f, 4, 32, nullptr),
                      Catch::Contains("argument 1 is on GPU 0, the kernel runs on GPU 1"));
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  CHECK(on_gpu0.to_host() == std::vector<float>(4, 0.0f));
  probe::launch_fill(on_gpu0.get(), 1.0f, 4, 32, gpu0_stream);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(on_gpu0.to_host() == std::vector<float>(4, 1.0f));
  cudaStreamDestroy(gpu0_stream);
}

TEST_CASE("emulated kernels: a captured launch runs at each graph launch with its captured arguments",
          "[emulated_cuda]") {
  cudaStream_t stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
  const device_vector<float> out(std::vector<float>(8, 0.0f));
  REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  probe::launch_fill(out.get(), 3.0f, 8, 4, stream);
  cudaGraph_t graph = nullptr;
  REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
  CHECK(out.to_host() == std::vector<float>(8, 0.0f));  // captured, not run
  cudaGraphExec_t exec = nullptr;
  REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
  REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
  CHECK(out.to_host() == std::vector<float>(8, 3.0f));
  REQUIRE(cudaMemsetAsync(out.get(), 0, 8 * sizeof(float), stream) == cudaSuccess);
  REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
  CHECK(out.to_host() == std::vector<float>(8, 3.0f));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace glm4::emulated_cuda
