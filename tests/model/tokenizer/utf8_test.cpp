#include <catch2/catch.hpp>

#include "model/tokenizer/utf8.hpp"

using namespace glm4::model;

namespace {

std::string fffd(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += utf8::replacement_utf8;
  return s;
}

}  // namespace

TEST_CASE("replace_invalid matches Python's errors=\"replace\"", "[tokenizer][utf8]") {
  // Expected values come from CPython 3.11: bytes.decode("utf-8", "replace").
  struct example {
    std::string input;
    std::string expected;
  };
  const example examples[] = {
      {"\xff", fffd(1)},
      {"\xfe\xff", fffd(2)},
      {"abc\xff"
       "def",
       "abc" + fffd(1) + "def"},
      {"\xe0\x80", fffd(2)},  // E0 needs A0..BF next: overlong
      {"\xe2\x82", fffd(1)},  // truncated at the end
      {"\xe2\x82"
       "A",
       fffd(1) + "A"},            // truncated before an ASCII byte
      {"\xed\xa0\x80", fffd(3)},  // a surrogate
      {"\xf0\x9f\x98", fffd(1)},
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
      {"\xc0\xaf", fffd(2)},
      {"\xf4\x90\x80\x80", fffd(4)},  // above U+10FFFF
      {"\xf5", fffd(1)},
      {"\xc2", fffd(1)},
      {"\xc2"
       "A",
       fffd(1) + "A"},
      {"\xf1\x80\x80z", fffd(1) + "z"},
      {"\x80\x80", fffd(2)},
      {"\xe0\xa0\x80", "\xe0\xa0\x80"},
      {"\xef\xbf\xbf", "\xef\xbf\xbf"},
      {"\xf0\x90\x80", fffd(1)},
      {"\xe4\xbd\xa0\xe5", "\xe4\xbd\xa0" + fffd(1)},
      {"\xc3\xa9\xe2\x82\xac", "\xc3\xa9\xe2\x82\xac"},
      {std::string("a\0b", 3), std::string("a\0b", 3)},
  };
  for (const example& e : examples) {
    CAPTURE(e.input);
    CHECK(utf8::replace_invalid(e.input) == e.expected);
    CHECK(utf8::is_valid(e.input) == (e.input == e.expected));
  }
}

TEST_CASE("complete_prefix_length holds back only a character that may still finish", "[tokenizer][utf8]") {
  CHECK(utf8::complete_prefix_length("") == 0);
  CHECK(utf8::complete_prefix_length("ab") == 2);
  CHECK(utf8::complete_prefix_length("ab\xe4\xbd") == 2);
  CHECK(utf8::complete_prefix_length("ab\xe4\xbd\xa0") == 5);
  CHECK(utf8::complete_prefix_length("a\xf0\x9f") == 1);
  CHECK(utf8::complete_prefix_length("a\xf0\x9f\x98") == 1);
  CHECK(utf8::complete_prefix_length("\xff") == 1);      // never valid: not held back
  CHECK(utf8::complete_prefix_length("\xe0\x80") == 2);  // already ill-formed
  CHECK(utf8::complete_prefix_length("\x80\x80\x80\x80\xe4") == 4);
}

TEST_CASE("decode_next and append round trip every scalar value", "[tokenizer][utf8]") {
  for (char32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x800 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    utf8::append(s, cp);
    std::size_t pos = 0;
    const auto decoded = utf8::decode_next(s, pos);
    REQUIRE(decoded);
    CHECK(*decoded == cp);
    CHECK(pos == s.size());
  }
}

TEST_CASE("is_white_space is Unicode White_Space", "[tokenizer][utf8]") {
  for (char32_t cp :
       {0x09u, 0x0Au, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au, 0x2028u, 0x3000u}) {
    CHECK(utf8::is_white_space(cp));
  }
  for (char32_t cp : {0x08u, 0x1Cu, 0x41u, 0x180Eu, 0x200Bu, 0xFEFFu}) CHECK_FALSE(utf8::is_white_space(cp));
}
