#include "model/tokenizer/byte_level.hpp"

#include <array>

#include "model/tokenizer/utf8.hpp"

namespace glm4::model::byte_level {
namespace {

bool is_printable(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct tables {
  std::array<char32_t, 256> to_code_point{};
  std::array<std::int16_t, 0x144> to_byte{};  // code points above U+0143 are never in the map

  tables() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (unsigned b = 0; b < 256; ++b) {
      to_code_point[b] = is_printable(b) ? char32_t{b} : next++;
      to_byte[to_code_point[b]] = static_cast<std::int16_t>(b);
    }
  }
};

const tables& the_tables() {
  static const tables t;
  return t;
}

}  // namespace

char32_t byte_to_code_point(std::uint8_t byte) { return the_tables().to_code_point[byte]; }

std::optional<std::uint8_t> code_point_to_byte(char32_t code_point) {
  const tables& t = the_tables();
  if (code_point >= t.to_byte.size() || t.to_byte[code_point] < 0) return std::nullopt;
  return static_cast<std::uint8_t>(t.to_byte[code_point]);
}

std::optional<std::string> to_bytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  std::size_t pos = 0;
  while (pos < token.size()) {
    const std::optional<char32_t> cp = utf8::decode_next(token, pos);
    if (!cp) return std::nullopt;
    const std::optional<std::uint8_t> b = code_point_to_byte(*cp);
    if (!b) return std::nullopt;
    out.push_back(static_cast<char>(*b));
  }
  return out;
}

std::string from_bytes(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) utf8::append(out, byte_to_code_point(static_cast<std::uint8_t>(c)));
  return out;
}

}  // namespace glm4::model::byte_level
