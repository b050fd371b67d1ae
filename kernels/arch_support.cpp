#include "kernels/arch_support.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace glm4::kernels {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

cuda_arch parse_arch(std::string_view number, std::string_view entry) {
  cuda_arch arch;
  if (!number.empty() && (number.back() == 'a' || number.back() == 'f')) {
    (number.back() == 'a' ? arch.arch_specific : arch.family_specific) = true;
    number.remove_suffix(1);
  }
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), arch.value);
  if (number.empty() || error != std::errc{} || end != number.data() + number.size() || arch.value < 10)
    throw std::invalid_argument("CUDA architecture list: '" + std::string(entry) +
                                "' is not an architecture like 75, 80-real or 90-virtual");
  return arch;
}

void add_unique(std::vector<cuda_arch>& archs, cuda_arch arch) {
  if (std::find(archs.begin(), archs.end(), arch) == archs.end()) archs.push_back(arch);
}

std::string arch_number(const cuda_arch& arch) {
  return std::to_string(arch.value) + (arch.arch_specific ? "a" : arch.family_specific ? "f" : "");
}

// Whether code for `arch` runs on a GPU of compute capability major.minor, as SASS or as PTX.
bool sass_runs(const cuda_arch& arch, int major, int minor) {
  if (arch.arch_specific) return arch.value == major * 10 + minor;
  return arch.major() == major && arch.minor() <= minor;  // plain and family SASS alike
}

bool ptx_runs(const cuda_arch& arch, int major, int minor) {
  if (arch.arch_specific) return arch.value == major * 10 + minor;
  if (arch.family_specific) return arch.major() == major && arch.minor() <= minor;
  return arch.value <= major * 10 + minor;
}

std::string family_name(int value) {
  if (value >= 100) return "Blackwell";
  if (value >= 90) return "Hopper";
  if (value == 89) return "Ada";
  if (value >= 80) return "Ampere";
  if (value == 75) return "Turing";
  if (value >= 70) return "Volta";
  if (value >= 60) return "Pascal";
  if (value >= 50) return "Maxwell";
  return "Kepler";
}

}  // namespace

cuda_arch_list parse_cuda_architectures(std::string_view list) {
  cuda_arch_list archs;
  while (!list.empty()) {
    const std::size_t cut = list.find_first_of(";,");
    const std::string_view entry = trim(list.substr(0, cut));
    list = cut == std::string_view::npos ? std::string_view{} : list.substr(cut + 1);
    if (entry.empty()) continue;
    if (ends_with(entry, "-real")) {
      add_unique(archs.sass, parse_arch(entry.substr(0, entry.size() - 5), entry));
    } else if (ends_with(entry, "-virtual")) {
      add_unique(archs.ptx, parse_arch(entry.substr(0, entry.size() - 8), entry));
    } else {
      const cuda_arch arch = parse_arch(entry, entry);
      add_unique(archs.sass, arch);
      add_unique(archs.ptx, arch);
    }
  }
  return archs;
}

std::string describe(const cuda_arch_list& archs) {
  if (archs.empty()) return "none";
  std::string text;
  for (const auto& arch : archs.sass) text += (text.empty() ? "sm_" : " sm_") + arch_number(arch);
  if (!archs.sass.empty()) text += " (SASS)";
  std::string ptx;
  for (const auto& arch : archs.ptx) ptx += (ptx.empty() ? "compute_" : " compute_") + arch_number(arch);
  if (!ptx.empty()) text += (text.empty() ? "" : ", ") + ptx + " (PTX)";
  return text;
}

arch_verdict can_run(const cuda_arch_list& archs, int major, int minor, int toolkit_major) {
  const int gpu = major * 10 + minor;
  arch_verdict verdict;
  // The newest SASS that runs natively: same major, minor not above the GPU's.
  for (const auto& arch : archs.sass) {
    if (sass_runs(arch, major, minor) && (verdict.mode != run_mode::native_sass || arch.value > verdict.used.value)) {
      verdict.mode = run_mode::native_sass;
      verdict.used = arch;
    }
  }
  if (verdict.mode == run_mode::native_sass) return verdict;
  // Else the newest PTX the driver can JIT for this GPU.
  for (const auto& arch : archs.ptx) {
    if (ptx_runs(arch, major, minor) && (verdict.mode != run_mode::ptx_jit || arch.value > verdict.used.value)) {
      verdict.mode = run_mode::ptx_jit;
      verdict.used = arch;
    }
  }
  if (verdict.mode == run_mode::ptx_jit) return verdict;
  if (auto limit = toolkit_limit(major, minor, toolkit_major)) {
    verdict.advice = *limit;
  } else {
    verdict.advice = "this binary has no code for sm_" + std::to_string(gpu) + " (it carries " + describe(archs) +
                     "): rebuild with -DCMAKE_CUDA_ARCHITECTURES=" + std::to_string(gpu);
  }
  return verdict;
}

bool has_native_bf16(int major, int /*minor*/) { return major >= 8; }

int min_arch_for_toolkit(int toolkit_major) {
  if (toolkit_major >= 13) return 75;
  if (toolkit_major == 12) return 50;
  return 35;
}

std::optional<std::string> toolkit_limit(int major, int minor, int toolkit_major) {
  const int gpu = major * 10 + minor;
  if (gpu >= min_arch_for_toolkit(toolkit_major)) return std::nullopt;
  const std::string name = "sm_" + std::to_string(gpu) + " (" + family_name(gpu) + ")";
  if (toolkit_major >= 13 && gpu >= 50)
    return name + " is not a CUDA " + std::to_string(toolkit_major) +
           " target (CUDA 13 starts at sm_75): build with a CUDA 12 toolkit and -DCMAKE_CUDA_ARCHITECTURES=" +
           std::to_string(gpu);
  return name + " is older than any architecture CUDA " + std::to_string(toolkit_major) +
         " supports; use the CPU backend";
}

}  // namespace glm4::kernels
