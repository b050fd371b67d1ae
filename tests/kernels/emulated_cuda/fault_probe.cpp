// Accesses a GPU would fault on, each of which the emulation must turn into a crash at the access (run by
// expect_fault.cmake, which wants "about to fault" printed and then a segmentation fault).
#include <cuda_runtime.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/kernels/emulated_cuda/probe_kernels.cuh"

namespace {

float* device_floats(int count) {
  float* p = nullptr;
  if (cudaMalloc(reinterpret_cast<void**>(&p), count * sizeof(float)) != cudaSuccess) std::exit(2);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace glm4::emulated_cuda::probe;
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "past-the-end") {
    float* p = device_floats(64);  // one 256-byte granule
    std::puts("about to fault");
    std::fflush(stdout);
    launch_fill(p, 1.0f, 65, 65, nullptr);
  } else if (mode == "before-the-page") {
    float* p = device_floats(64);
    float* out = device_floats(1);
    const auto page_floats = static_cast<int>(sysconf(_SC_PAGESIZE) / sizeof(float));
    std::puts("about to fault");
    std::fflush(stdout);
    launch_copy_shifted(out, p, 1, -page_floats, nullptr);  // past the slack before p, into the guard page
  } else if (mode == "shared-overrun") {
    std::puts("about to fault");
    std::fflush(stdout);
    launch_shared_overrun(nullptr);
  } else {
    std::fprintf(stderr, "usage: fault_probe past-the-end|before-the-page|shared-overrun\n");
    return 2;
  }
  std::puts("no fault");
  return 0;
}
