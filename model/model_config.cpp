#include "model/model_config.hpp"

namespace glm4::model {

std::string_view layout_name(checkpoint_layout layout) {
  switch (layout) {
    case checkpoint_layout::chatglm: return "chatglm";
    case checkpoint_layout::glm: return "glm";
    case checkpoint_layout::glm4: return "glm4";
  }
  return "?";
}

std::optional<checkpoint_layout> parse_layout(std::string_view name) {
  if (name == "chatglm") return checkpoint_layout::chatglm;
  if (name == "glm") return checkpoint_layout::glm;
  if (name == "glm4") return checkpoint_layout::glm4;
  return std::nullopt;
}

}  // namespace glm4::model
