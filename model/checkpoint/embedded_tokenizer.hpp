// The project's default tokenizer files (tests/data/tokenizer), embedded at build time so
// make-model can write a complete checkpoint anywhere.
#pragma once

#include <optional>
#include <string_view>

namespace glm4::model {

/// The bytes of "tokenizer.json", "tokenizer_config.json" or "tokenizer.model"; nullopt for a
/// name that was not embedded (the file was missing at build time).
std::optional<std::string_view> embedded_tokenizer_file(std::string_view name);

}  // namespace glm4::model
