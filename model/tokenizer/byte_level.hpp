// GPT-2's reversible map between bytes and printable code points, the alphabet of
// byte-level BPE vocabularies in tokenizer.json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace glm4::model::byte_level {

/// Printable bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) map to themselves;
/// the other 68 bytes map, in byte order, to U+0100..U+0143.
char32_t byte_to_code_point(std::uint8_t byte);
std::optional<std::uint8_t> code_point_to_byte(char32_t code_point);

/// The bytes a vocabulary string stands for; nullopt when it holds a character outside the
/// map (or is not valid UTF-8).
std::optional<std::string> to_bytes(std::string_view token);

/// The vocabulary string of some bytes.
std::string from_bytes(std::string_view bytes);

}  // namespace glm4::model::byte_level
