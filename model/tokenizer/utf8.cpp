#include "model/tokenizer/utf8.hpp"

#include <cstdint>

namespace glm4::model::utf8 {
namespace {

struct lead_info {
  std::size_t length;        // bytes in the whole character; 0 for a byte that never leads
  std::uint8_t second_low;   // the second byte's allowed range excludes overlongs,
  std::uint8_t second_high;  // surrogates and code points above U+10FFFF
};

lead_info classify_lead(std::uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  return {0, 0, 0};
}

}  // namespace

sequence next_sequence(std::string_view text, std::size_t pos) {
  const auto lead = static_cast<std::uint8_t>(text[pos]);
  const lead_info info = classify_lead(lead);
  if (info.length == 1) return {sequence_kind::valid, 1};
  if (info.length == 0) return {sequence_kind::invalid, 1};
  std::size_t n = 1;
  while (n < info.length) {
    if (pos + n >= text.size()) return {sequence_kind::truncated, n};
    const auto b = static_cast<std::uint8_t>(text[pos + n]);
    const std::uint8_t low = n == 1 ? info.second_low : 0x80;
    const std::uint8_t high = n == 1 ? info.second_high : 0xBF;
    if (b < low || b > high) return {sequence_kind::invalid, n};
    ++n;
  }
  return {sequence_kind::valid, n};
}

bool is_valid(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<std::uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const sequence seq = next_sequence(text, pos);
    if (seq.kind != sequence_kind::valid) return false;
    pos += seq.length;
  }
  return true;
}

std::string replace_invalid(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const sequence seq = next_sequence(text, pos);
    if (seq.kind == sequence_kind::valid) {
      out.append(text.substr(pos, seq.length));
    } else {
      out.append(replacement_utf8);
    }
    pos += seq.length;
  }
  return out;
}

std::size_t complete_prefix_length(std::string_view text) {
  // A truncated sequence is at most 3 bytes, so only the tail needs a look.
  std::size_t pos = text.size() > 3 ? text.size() - 3 : 0;
  // Step back to a byte that can start a sequence, so the scan stays in phase.
  while (pos > 0 && (static_cast<std::uint8_t>(text[pos]) & 0xC0) == 0x80) --pos;
  while (pos < text.size()) {
    const sequence seq = next_sequence(text, pos);
    if (seq.kind == sequence_kind::truncated) return pos;
    pos += seq.length;
  }
  return text.size();
}

std::optional<char32_t> decode_next(std::string_view text, std::size_t& pos) {
  const sequence seq = next_sequence(text, pos);
  const std::size_t start = pos;
  pos += seq.length;
  if (seq.kind != sequence_kind::valid) return std::nullopt;
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[start + i]); };
  switch (seq.length) {
    case 1:
      return byte(0);
    case 2:
      return (char32_t{byte(0) & 0x1Fu} << 6) | (byte(1) & 0x3Fu);
    case 3:
      return (char32_t{byte(0) & 0x0Fu} << 12) | (char32_t{byte(1) & 0x3Fu} << 6) | (byte(2) & 0x3Fu);
    default:
      return (char32_t{byte(0) & 0x07u} << 18) | (char32_t{byte(1) & 0x3Fu} << 12) |
             (char32_t{byte(2) & 0x3Fu} << 6) | (byte(3) & 0x3Fu);
  }
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_white_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

}  // namespace glm4::model::utf8
