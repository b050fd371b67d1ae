// config.json of the three GLM-4 checkpoint layouts -> model_config; generation_config.json -> generation_config.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "model/model_config.hpp"

namespace glm4::model {

/// Parses config.json text; the layout comes from "architectures", else "model_type".
/// Throws checkpoint_error naming `label` and the key (missing, wrong type, unsupported value,
/// unknown architecture with the supported ones listed).
model_config parse_model_config(std::string_view json_text, const std::string& label);

/// Reads dir/config.json.
model_config load_model_config(const std::filesystem::path& dir);

/// Parses generation_config.json text; `fallback_json` (config.json's text, may be empty) supplies
/// eos_token_id / pad_token_id the first lacks. An eos id is required in one of the two.
generation_config parse_generation_config(std::string_view json_text, const std::string& label,
                                          std::string_view fallback_json, const std::string& fallback_label);

/// Reads dir/generation_config.json, falling back to dir/config.json key by key (or entirely
/// when the file is absent).
generation_config load_generation_config(const std::filesystem::path& dir);

/// The architecture names each layout is detected from (for messages and tests).
std::string supported_architectures();

}  // namespace glm4::model
