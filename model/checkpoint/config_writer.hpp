// Writes config.json and generation_config.json in a layout's own keys (the inverse of config_parser).
#pragma once

#include <string>

#include "model/model_config.hpp"

namespace glm4::model {

/// config.json text for `config.layout`, with the eos/pad ids as the real files carry them.
/// Throws checkpoint_error when the layout cannot express the config (chatglm rotates exactly
/// half of each head; glm4 has post norms and glm has none).
std::string config_json_text(const model_config& config, const generation_config& generation);

/// generation_config.json text: eos/pad ids and GLM-4's default sampling.
std::string generation_config_json_text(const model_config& config, const generation_config& generation);

}  // namespace glm4::model
