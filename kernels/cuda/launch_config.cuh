// Grid sizing shared by the element-wise launchers.
#pragma once

#include <algorithm>
#include <cstdint>

namespace glm4::kernels::cuda {

inline constexpr int elementwise_threads = 256;

/// Blocks for `count` elements at one element per thread, capped so grid-stride loops cover the rest.
inline unsigned elementwise_blocks(std::int64_t count) {
  const std::int64_t blocks = (count + elementwise_threads - 1) / elementwise_threads;
  return static_cast<unsigned>(std::clamp<std::int64_t>(blocks, 1, 65535L * 16));
}

}  // namespace glm4::kernels::cuda
