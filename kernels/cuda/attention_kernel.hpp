// Which paged attention kernel a CUDA backend runs (no CUDA headers, for the backend's users).
#pragma once

#include <optional>
#include <string_view>

namespace glm4::kernels::cuda {

/// One block per (row, query head), or per (row, KV head) for the query heads that share it
/// (grouped_attention.cuh). grouped is the default: it reads the KV cache a group's size fewer
/// times (16 for glm-4-9b), which prefills of long prompts and large decode batches pay for in
/// full. The measurement of both is owed to a GPU run (docs/benchmarks.md).
enum class attention_kernel { per_head, grouped };

/// "per_head" or "grouped"; nullopt for anything else.
inline std::optional<attention_kernel> parse_attention_kernel(std::string_view name) {
  if (name == "per_head") return attention_kernel::per_head;
  if (name == "grouped") return attention_kernel::grouped;
  return std::nullopt;
}

}  // namespace glm4::kernels::cuda
