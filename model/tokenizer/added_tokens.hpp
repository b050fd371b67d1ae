// Added (special) tokens: found in raw text before pre-tokenization, leftmost-longest
// first, the way HF's AddedVocabulary splits input.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/pair_table.hpp"

namespace glm4::model {

struct added_token {
  token_id id = 0;
  std::string content;     // the text that stands for the token
  bool is_special = true;  // skipped by decode(..., skip_special = true)
  bool lstrip = false;     // the match swallows white space on its left
  bool rstrip = false;     // ... and on its right
};

/// One stretch of input: either an added token or text to pre-tokenize.
struct text_segment {
  std::string_view text;
  std::optional<token_id> token;
};

class added_token_matcher {
 public:
  added_token_matcher() = default;
  explicit added_token_matcher(std::vector<added_token> tokens);

  /// Appends the segments of text (valid UTF-8); text segments are never empty.
  void split(std::string_view text, std::vector<text_segment>& out) const;

  const std::vector<added_token>& tokens() const { return tokens_; }

 private:
  std::vector<added_token> tokens_;
  // Indices into tokens_ by first byte, longest content first.
  std::array<std::vector<std::size_t>, 256> by_first_byte_;
};

}  // namespace glm4::model
