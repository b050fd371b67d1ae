#include <catch2/catch.hpp>

#include "model/tokenizer/pre_tokenizer.hpp"
#include "model/tokenizer/tokenizer_error.hpp"

using namespace glm4::model;

namespace {

std::vector<std::string> split(std::string_view text) {
  static const pre_tokenizer glm4{glm4_split_pattern};
  std::vector<std::string_view> pieces;
  glm4.split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

using pieces = std::vector<std::string>;

}  // namespace

TEST_CASE("GLM-4's pattern splits words, numbers, punctuation and spaces", "[tokenizer][pre_tokenizer]") {
  CHECK(split("Hello world") == pieces{"Hello", " world"});
  CHECK(split("I'm here") == pieces{"I", "'m", " here"});
  CHECK(split("THEY'RE") == pieces{"THEY", "'RE"});
  CHECK(split("1234567") == pieces{"123", "456", "7"});
  CHECK(split("a  b") == pieces{"a", " ", " b"});
  CHECK(split("x\r\n\r\ny") == pieces{"x", "\r\n\r\n", "y"});
  CHECK(split("foo!!\n") == pieces{"foo", "!!\n"});
  CHECK(split("end   ") == pieces{"end", "   "});
  CHECK(split("\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c") ==
        pieces{"\xe4\xbd\xa0\xe5\xa5\xbd", "\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c"});  // 你好，世界
  CHECK(split("").empty());
}

TEST_CASE("\\s is Unicode White_Space, as in Oniguruma", "[tokenizer][pre_tokenizer]") {
  // U+0085 is white space: "\s+(?!\S)" takes the first NEL alone.
  CHECK(split("a\xc2\x85\xc2\x85"
              "b") == pieces{"a", "\xc2\x85",
                             "\xc2\x85"
                             "b"});
  // U+180E is not (PCRE2's own UCP \s would say it is).
  CHECK(split("a\xe1\xa0\x8e\xe1\xa0\x8e"
              "b") == pieces{"a", "\xe1\xa0\x8e\xe1\xa0\x8e", "b"});
}

TEST_CASE("pieces concatenate to the input, gaps included", "[tokenizer][pre_tokenizer]") {
  const pre_tokenizer digits_only{R"(\d+)"};
  std::vector<std::string_view> out;
  digits_only.split("ab12cd345", out);
  CHECK(pieces(out.begin(), out.end()) == pieces{"ab", "12", "cd", "345"});
  out.clear();
  const pre_tokenizer empty_matches{R"(x*)"};
  empty_matches.split("axxb", out);
  CHECK(pieces(out.begin(), out.end()) == pieces{"a", "xx", "b"});
}

TEST_CASE("the white space rewrite leaves escaped backslashes alone", "[tokenizer][pre_tokenizer]") {
  CHECK(with_unicode_white_space(R"(\\s)") == R"(\\s)");
  CHECK(with_unicode_white_space(R"([^\s])").find(R"(\x{3000})") != std::string::npos);
  CHECK(with_unicode_white_space(R"(\S)").starts_with("[^"));
  CHECK(with_unicode_white_space(R"([\]\s])").starts_with(R"([\]\t-\r)"));
}

TEST_CASE("a bad pattern is a tokenizer_error naming the pattern", "[tokenizer][pre_tokenizer]") {
  CHECK_THROWS_WITH(pre_tokenizer("(unclosed"), Catch::Contains("(unclosed") && Catch::Contains("offset"));
}
