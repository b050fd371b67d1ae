// Standard base64 (RFC 4648, '=' padding): the token encoding of tiktoken files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace glm4::model {

/// nullopt for a character outside the alphabet, a length that is not a multiple of 4 or
/// non-zero padding bits.
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace glm4::model
