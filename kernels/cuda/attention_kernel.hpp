// Which paged attention kernel a CUDA backend runs (no CUDA headers, for the backend's users).
#pragma once

#include <optional>
#include <string_view>

namespace glm4::kernels::cuda {

/// One block per (row, query head), or per (row, KV head) for the query heads that share it
/// (grouped_attention.cuh). Which is faster where is still to be measured on a GPU; per_head is
/// the default until then.
enum class attention_kernel { per_head, grouped };

/// "per_head" or "grouped"; nullopt for anything else.
inline std::optional<attention_kernel> parse_attention_kernel(std::string_view name) {
  if (name == "per_head") return attention_kernel::per_head;
  if (name == "grouped") return attention_kernel::grouped;
  return std::nullopt;
}

}  // namespace glm4::kernels::cuda
