// UTF-8 scanning and repair with the rules of Python's bytes.decode("utf-8", errors="replace").
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace glm4::model::utf8 {

enum class sequence_kind {
  valid,      // one whole, well-formed character
  invalid,    // a maximal subpart of an ill-formed sequence: becomes one U+FFFD
  truncated,  // a well-formed prefix cut off by the end of the input
};

struct sequence {
  sequence_kind kind;
  std::size_t length;  // >= 1 bytes
};

inline constexpr char32_t replacement_character = 0xFFFD;
inline constexpr std::string_view replacement_utf8 = "\xEF\xBF\xBD";

/// Classifies the sequence that starts at text[pos] (pos < text.size()).
/// Invalid subparts follow Unicode's "maximal subpart" practice, as CPython does:
/// E0 80 is two errors, E2 82 41 is one error then 'A'.
sequence next_sequence(std::string_view text, std::size_t pos);

bool is_valid(std::string_view text);

/// text with every ill-formed subpart (a truncated tail included) replaced by U+FFFD.
std::string replace_invalid(std::string_view text);

/// Bytes of text that form whole characters or definite errors; what follows is a
/// truncated sequence that more bytes could still complete.
std::size_t complete_prefix_length(std::string_view text);

/// Decodes the character at text[pos] and advances pos; nullopt (pos advanced past the
/// ill-formed subpart) when it is not a valid character.
std::optional<char32_t> decode_next(std::string_view text, std::size_t& pos);

void append(std::string& out, char32_t code_point);

/// Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s accept).
bool is_white_space(char32_t code_point);

}  // namespace glm4::model::utf8
