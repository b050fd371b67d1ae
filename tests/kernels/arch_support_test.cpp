// Architecture decisions of kernels/arch_support: list parsing, SASS/PTX compatibility and advice.
#include <catch2/catch.hpp>

#include "kernels/arch_support.hpp"

namespace glm4::kernels {
namespace {

std::vector<int> values(const std::vector<cuda_arch>& archs) {
  std::vector<int> out;
  for (const auto& arch : archs) out.push_back(arch.value);
  return out;
}

}  // namespace

TEST_CASE("CMake architecture lists parse into SASS and PTX targets", "[arch]") {
  const auto archs = parse_cuda_architectures("75-real;80-real;90");
  CHECK(values(archs.sass) == std::vector<int>{75, 80, 90});
  CHECK(values(archs.ptx) == std::vector<int>{90});

  const auto mixed = parse_cuda_architectures(" 86 , 70-virtual;;90a-real");
  CHECK(values(mixed.sass) == std::vector<int>{86, 90});
  CHECK(mixed.sass[1].arch_specific);
  CHECK(values(mixed.ptx) == std::vector<int>{86, 70});
  CHECK(parse_cuda_architectures("").empty());
  CHECK(values(parse_cuda_architectures("80;80-real").sass) == std::vector<int>{80});

  for (const char* bad : {"native", "all", "sm_80", "80-fake", "8", "-real"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_cuda_architectures(bad), std::invalid_argument);
  }
}

TEST_CASE("architecture lists describe themselves for doctor", "[arch]") {
  CHECK(describe(parse_cuda_architectures("75-real;80-real;90")) == "sm_75 sm_80 sm_90 (SASS), compute_90 (PTX)");
  CHECK(describe(parse_cuda_architectures("90-virtual")) == "compute_90 (PTX)");
  CHECK(describe(cuda_arch_list{}) == "none");
}

TEST_CASE("a GPU runs native SASS of its major, else JIT PTX, else gets rebuild advice", "[arch]") {
  const auto archs = parse_cuda_architectures("75-real;80-real;86-real;89-real;90");

  SECTION("exact and same-major SASS") {
    CHECK(can_run(archs, 7, 5, 13).mode == run_mode::native_sass);
    const auto a10 = can_run(archs, 8, 6, 13);
    CHECK(a10.mode == run_mode::native_sass);
    CHECK(a10.used.value == 86);
    const auto orin = can_run(archs, 8, 7, 13);  // sm_87 runs sm_86 SASS, the newest of major 8 below it
    CHECK(orin.mode == run_mode::native_sass);
    CHECK(orin.used.value == 86);
    CHECK(orin.advice.empty());
  }
  SECTION("newer majors JIT the newest PTX") {
    const auto blackwell = can_run(archs, 12, 0, 13);
    CHECK(blackwell.mode == run_mode::ptx_jit);
    CHECK(blackwell.used.value == 90);
  }
  SECTION("SASS does not run across majors and PTX does not run backwards") {
    const auto sass_only = parse_cuda_architectures("80-real;90-real");
    const auto verdict = can_run(sass_only, 10, 0, 13);
    CHECK(verdict.mode == run_mode::unsupported);
    CHECK(verdict.advice.find("rebuild with -DCMAKE_CUDA_ARCHITECTURES=100") != std::string::npos);
    CHECK(can_run(parse_cuda_architectures("90"), 8, 0, 13).mode == run_mode::unsupported);
    CHECK(can_run(parse_cuda_architectures("80-real"), 7, 5, 13).advice.find("=75") != std::string::npos);
  }
  SECTION("arch-specific code runs only on its exact GPU") {
    const auto hopper_a = parse_cuda_architectures("90a");
    CHECK(can_run(hopper_a, 9, 0, 13).mode == run_mode::native_sass);
    CHECK(can_run(hopper_a, 10, 0, 13).mode == run_mode::unsupported);
  }
  SECTION("family code runs on its major from its minor up, and no further") {
    const auto blackwell_f = parse_cuda_architectures("100f");
    CHECK(describe(blackwell_f) == "sm_100f (SASS), compute_100f (PTX)");
    CHECK(can_run(blackwell_f, 10, 0, 13).mode == run_mode::native_sass);
    CHECK(can_run(blackwell_f, 10, 3, 13).mode == run_mode::native_sass);
    CHECK(can_run(blackwell_f, 12, 0, 13).mode == run_mode::unsupported);
    const auto ptx_f = parse_cuda_architectures("103f-virtual");
    CHECK(can_run(ptx_f, 10, 3, 13).mode == run_mode::ptx_jit);
    CHECK(can_run(ptx_f, 10, 0, 13).mode == run_mode::unsupported);
    CHECK(can_run(ptx_f, 11, 0, 13).mode == run_mode::unsupported);
    CHECK_FALSE(parse_cuda_architectures("100f-real").sass[0].arch_specific);
  }
  SECTION("Volta and Pascal need a CUDA 12 build") {
    const auto volta = can_run(archs, 7, 0, 13);
    CHECK(volta.mode == run_mode::unsupported);
    CHECK(volta.advice.find("CUDA 12") != std::string::npos);
    CHECK(volta.advice.find("Volta") != std::string::npos);
    CHECK(can_run(archs, 6, 1, 13).advice.find("Pascal") != std::string::npos);
    // A CUDA 12 build that lacks sm_70 gets the plain rebuild advice instead.
    CHECK(can_run(archs, 7, 0, 12).advice.find("-DCMAKE_CUDA_ARCHITECTURES=70") != std::string::npos);
  }
}

TEST_CASE("toolkit limits and BF16 support by compute capability", "[arch]") {
  CHECK(min_arch_for_toolkit(13) == 75);
  CHECK(min_arch_for_toolkit(12) == 50);
  CHECK_FALSE(toolkit_limit(7, 5, 13).has_value());
  CHECK(toolkit_limit(7, 0, 13).has_value());
  CHECK_FALSE(toolkit_limit(7, 0, 12).has_value());
  CHECK_FALSE(has_native_bf16(7, 5));
  CHECK(has_native_bf16(8, 0));
  CHECK(has_native_bf16(9, 0));
}

}  // namespace glm4::kernels
