// The watermark in blocks.
#include "engine/scheduler_config.hpp"

#include <algorithm>
#include <cmath>

namespace glm4::engine {

std::int32_t scheduler_config::num_watermark_blocks() const {
  if (num_blocks <= 1 || watermark <= 0.0) return 0;
  const auto blocks = static_cast<std::int32_t>(std::ceil(watermark * num_blocks));
  return std::clamp(blocks, 1, num_blocks - 1);
}

}  // namespace glm4::engine
