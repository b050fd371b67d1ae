#include <catch2/catch.hpp>

#include "model/tokenizer/byte_level.hpp"

using namespace glm4::model;

TEST_CASE("the byte-level map is GPT-2's", "[tokenizer][byte_level]") {
  CHECK(byte_level::from_bytes(" ") == "\xc4\xa0");   // U+0120 'Ġ'
  CHECK(byte_level::from_bytes("\n") == "\xc4\x8a");  // U+010A 'Ċ'
  CHECK(byte_level::from_bytes("A~") == "A~");
  CHECK(byte_level::byte_to_code_point(0x00) == 0x100);
  CHECK(byte_level::byte_to_code_point(0xAD) == 0x143);
  CHECK(byte_level::byte_to_code_point(0xE9) == 0xE9);
}

TEST_CASE("every byte round trips through the byte-level map", "[tokenizer][byte_level]") {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const auto back = byte_level::to_bytes(byte_level::from_bytes(all));
  REQUIRE(back);
  CHECK(*back == all);
}

TEST_CASE("strings outside the byte-level alphabet have no bytes", "[tokenizer][byte_level]") {
  CHECK_FALSE(byte_level::to_bytes("\xe4\xb8\xad"));  // U+4E2D
  CHECK_FALSE(byte_level::to_bytes("\xff"));          // not UTF-8
  CHECK(byte_level::to_bytes("") == std::string());
}
