// Streams the text of generated ids, one id at a time, in whole UTF-8 characters only.
#pragma once

#include <string>

#include "model/tokenizer/tokenizer.hpp"

namespace glm4::model {

/// push() returns the characters an id completes; bytes that could still begin a
/// character stay pending. Ill-formed bytes come out as U+FFFD as soon as they are known to
/// be ill-formed, so the concatenation of every push() and flush() equals
/// utf8::replace_invalid(tok.decode(ids)). One decoder per sequence; the tokenizer must
/// outlive it.
class incremental_decoder {
 public:
  explicit incremental_decoder(const tokenizer& tok, bool skip_special = false)
      : tokenizer_(&tok), skip_special_(skip_special) {}

  std::string push(token_id id);
  /// The pending bytes (an unfinished character) as U+FFFD; the decoder is then empty.
  std::string flush();
  bool has_pending() const { return !pending_.empty(); }

 private:
  const tokenizer* tokenizer_;
  bool skip_special_;
  std::string pending_;  // at most 3 bytes: a well-formed prefix of one character
};

}  // namespace glm4::model
