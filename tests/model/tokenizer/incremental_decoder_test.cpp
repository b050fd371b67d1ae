#include <catch2/catch.hpp>

#include "model/tokenizer/incremental_decoder.hpp"
#include "model/tokenizer/utf8.hpp"
#include "tests/model/tokenizer/tokenizer_fixtures.hpp"

using namespace glm4::model;
using namespace glm4::model::testing;

namespace {

token_id byte_id(const tokenizer& tok, unsigned char b) {
  return *tok.token_to_id(std::string(1, static_cast<char>(b)));
}

}  // namespace

TEST_CASE("streamed text is whole characters and adds up to the full decode",
          "[tokenizer][incremental][fixture]") {
  const tokenizer& tok = json_tokenizer();
  std::size_t num_held_back = 0;
  for (const corpus_case& c : corpus_cases()) {
    CAPTURE(c.line);
    incremental_decoder decoder(tok);
    std::string streamed;
    for (token_id id : c.ids) {
      const std::string chunk = decoder.push(id);
      CHECK(utf8::is_valid(chunk));
      num_held_back += decoder.has_pending() ? 1 : 0;
      streamed += chunk;
    }
    const std::string rest = decoder.flush();
    CHECK(rest.empty());  // HF's ids of valid text never end inside a character
    streamed += rest;
    CHECK(streamed == utf8::replace_invalid(tok.decode(c.ids)));
  }
  CHECK(num_held_back > 0);  // the corpus does split characters across ids
}

TEST_CASE("a character split over byte tokens comes out when it is complete",
          "[tokenizer][incremental][fixture]") {
  const tokenizer& tok = json_tokenizer();
  incremental_decoder decoder(tok);
  CHECK(decoder.push(byte_id(tok, 0xE4)).empty());
  CHECK(decoder.push(byte_id(tok, 0xBD)).empty());
  CHECK(decoder.push(byte_id(tok, 0xA0)) == "\xe4\xbd\xa0");
  CHECK_FALSE(decoder.has_pending());
}

TEST_CASE("ill-formed bytes come out as U+FFFD as soon as they are known bad",
          "[tokenizer][incremental][fixture]") {
  const tokenizer& tok = json_tokenizer();
  incremental_decoder decoder(tok);
  CHECK(decoder.push(byte_id(tok, 0xFF)) == utf8::replacement_utf8);
  CHECK(decoder.push(byte_id(tok, 0xE4)).empty());
  CHECK(decoder.push(byte_id(tok, 'a')) == std::string(utf8::replacement_utf8) + "a");
  CHECK(decoder.push(byte_id(tok, 0xF0)).empty());
  CHECK(decoder.push(byte_id(tok, 0x9F)).empty());
  CHECK(decoder.flush() == utf8::replacement_utf8);
  CHECK(decoder.flush().empty());
}

TEST_CASE("special ids stream as their text unless skipped", "[tokenizer][incremental][fixture]") {
  const tokenizer& tok = json_tokenizer();
  incremental_decoder keep(tok);
  incremental_decoder skip(tok, true);
  CHECK(keep.push(1017) == "<|user|>");
  CHECK(skip.push(1017).empty());
  CHECK(keep.push(999999).empty());  // no piece: nothing
}
