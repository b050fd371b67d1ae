// Runs one kernel of race_probe_kernels.cu, by the mode named on the command line, and checks what it
// computed. Built with ThreadSanitizer; expect_race.cmake wants a data-race report from each racy mode and
// a clean exit from each ordered one.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/kernels/emulated_cuda/race_probe_kernels.cuh"

namespace {

using namespace glm4::emulated_cuda::race_probe;

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  std::fprintf(stderr, "race_probe: %s: %s\n", what, cudaGetErrorString(status));
  std::exit(2);
}

// Runs `launch` on a fresh buffer of `count` zeros and checks out[i] == expected(i).
int run_floats(int count, const std::function<void(float*)>& launch, const std::function<float(int)>& expected) {
  float* device = nullptr;
  check(cudaMalloc(reinterpret_cast<void**>(&device), count * sizeof(float)), "cudaMalloc");
  check(cudaMemsetAsync(device, 0, count * sizeof(float), nullptr), "cudaMemsetAsync");
  launch(device);
  check(cudaGetLastError(), "launch");
  std::vector<float> host(static_cast<std::size_t>(count));
  check(cudaMemcpy(host.data(), device, count * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaFree(device), "cudaFree");
  for (int i = 0; i < count; ++i) {
    const float got = host[static_cast<std::size_t>(i)];
    if (got != expected(i)) {
      std::fprintf(stderr, "race_probe: out[%d] is %g, expected %g\n", i, got, expected(i));
      return 1;
    }
  }
  return 0;
}

int run_count(bool atomic) {
  unsigned* counter = nullptr;
  check(cudaMalloc(reinterpret_cast<void**>(&counter), sizeof(unsigned)), "cudaMalloc");
  check(cudaMemsetAsync(counter, 0, sizeof(unsigned), nullptr), "cudaMemsetAsync");
  launch_count(counter, atomic, nullptr);
  check(cudaGetLastError(), "launch");
  unsigned total = 0;
  check(cudaMemcpy(&total, counter, sizeof total, cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaFree(counter), "cudaFree");
  return total == 64 ? 0 : 1;  // what a plain add gives on a GPU is anyone's guess; here it is 64 too
}

}  // namespace

int main(int argc, char** argv) {
  const auto block_neighbour = [](bool with_barrier) {
    return run_floats(256, [=](float* out) { launch_shared_neighbour(out, with_barrier, nullptr); },
                      [](int i) { return static_cast<float>(2 * ((i % 64 + 1) % 64)); });
  };
  const auto warp_neighbour = [](bool with_barrier) {
    return run_floats(32, [=](float* out) { launch_warp_neighbour(out, with_barrier, nullptr); },
                      [](int i) { return static_cast<float>(i ^ 1); });
  };
  const auto shuffle_then_read = [](bool with_barrier) {
    return run_floats(32, [=](float* out) { launch_shuffle_then_read(out, with_barrier, nullptr); },
                      [](int i) { return static_cast<float>(i ^ 1); });
  };
  const std::map<std::string, std::function<int()>> modes{
      {"shared-without-syncthreads", [&] { return block_neighbour(false); }},
      {"shared-with-syncthreads", [&] { return block_neighbour(true); }},
      {"warp-without-syncwarp", [&] { return warp_neighbour(false); }},
      {"warp-with-syncwarp", [&] { return warp_neighbour(true); }},
      {"shuffle-without-syncwarp", [&] { return shuffle_then_read(false); }},
      {"shuffle-with-syncwarp", [&] { return shuffle_then_read(true); }},
      {"plain-add", [] { return run_count(false); }},
      {"atomic-add", [] { return run_count(true); }},
      // Blocks run one after another here: the last block's write lands, and each block reads the zero
      // the next one has yet to overwrite.
      {"blocks-write-one-word",
       [] {
         return run_floats(1, [](float* out) { launch_blocks_write_one_word(out, nullptr); }, [](int) { return 3.0f; });
       }},
      {"blocks-read-next",
       [] { return run_floats(5, [](float* out) { launch_blocks_read_next(out, nullptr); },
                              [](int i) { return i < 4 ? 1.0f : 0.0f; }); }},
  };
  const auto mode = modes.find(argc > 1 ? argv[1] : "");
  if (mode == modes.end()) {
    std::fprintf(stderr, "usage: race_probe MODE, one of:");
    for (const auto& [name, run] : modes) std::fprintf(stderr, " %s", name.c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }
  return mode->second();
}
