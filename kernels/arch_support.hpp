// Which GPUs a build can run on: parses CMAKE_CUDA_ARCHITECTURES-style lists and decides, for a
// GPU's compute capability, between native SASS, PTX JIT and "rebuild". Pure C++ (no CUDA headers)
// so `glm4-actor doctor` and its tests work on machines without a GPU or a toolkit.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace glm4::kernels {

/// One target: 75 for sm_75; arch_specific for the "90a" kind, whose code runs only on exactly 9.0;
/// family_specific for the "100f" kind (CUDA 12.9+), whose code runs on its major from its minor
/// up (10.0 and 10.3 for 100f), and not on later majors as plain PTX does.
struct cuda_arch {
  int value = 0;
  bool arch_specific = false;
  bool family_specific = false;
  int major() const { return value / 10; }
  int minor() const { return value % 10; }
  friend bool operator==(const cuda_arch&, const cuda_arch&) = default;
};

/// The code a binary carries: SASS (machine code) and PTX (JIT-compiled by the driver).
struct cuda_arch_list {
  std::vector<cuda_arch> sass;
  std::vector<cuda_arch> ptx;
  bool empty() const { return sass.empty() && ptx.empty(); }
};

/// "75-real;80-real;90" -> SASS {75, 80, 90}, PTX {90} ("NN" = both, "-real" = SASS, "-virtual" = PTX;
/// ',' or ';' separated). Throws std::invalid_argument naming the entry for anything else
/// ("native", "all" included: kernels/cuda/CMakeLists.txt spells them out before they reach the code).
cuda_arch_list parse_cuda_architectures(std::string_view list);

/// "sm_75 sm_80 (SASS), compute_90 (PTX)"; "none" for an empty list.
std::string describe(const cuda_arch_list& archs);

enum class run_mode { native_sass, ptx_jit, unsupported };

struct arch_verdict {
  run_mode mode = run_mode::unsupported;
  cuda_arch used;      // the SASS or PTX target picked; meaningless when unsupported
  std::string advice;  // empty unless unsupported: what to rebuild with, and with which toolkit
};

/// Whether a binary carrying `archs`, built with toolkit `toolkit_major`, runs on a GPU of compute
/// capability major.minor: SASS of the same major with minor <= the GPU's, else PTX of an arch
/// <= the GPU's through the driver's JIT, else not, with advice.
arch_verdict can_run(const cuda_arch_list& archs, int major, int minor, int toolkit_major);

/// Native BF16 arithmetic (and cuBLAS BF16 GEMMs): compute capability 8.0 or newer.
bool has_native_bf16(int major, int minor);

/// The oldest architecture a toolkit can target: 75 for CUDA 13, 50 for CUDA 12, 35 for CUDA 11.
int min_arch_for_toolkit(int toolkit_major);

/// Why a GPU is too old for this toolkit ("sm_70 (Volta) is not a CUDA 13 target: build with a
/// CUDA 12 toolkit ..."); nullopt when the toolkit can target it.
std::optional<std::string> toolkit_limit(int major, int minor, int toolkit_major);

}  // namespace glm4::kernels
