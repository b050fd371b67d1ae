// Splits text into the pieces BPE merges inside: a regex whose matches and the gaps
// between them each become one piece (HF's Split pre-tokenizer, behaviour "Isolated").
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;

namespace glm4::model {

/// GLM-4's split pattern (tokenization_chatglm.py and tokenizer.json agree on it).
inline constexpr std::string_view glm4_split_pattern =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

/// GPT-2's pattern, what HF's ByteLevel pre-tokenizer uses when its use_regex is true.
inline constexpr std::string_view gpt2_split_pattern =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";

/// A compiled split pattern (PCRE2, UTF + UCP, JIT when available). Immutable, so one
/// instance may split from many threads at once.
class pre_tokenizer {
 public:
  /// Throws tokenizer_error naming the offset in the pattern where compiling failed.
  explicit pre_tokenizer(std::string_view pattern);

  /// Appends the pieces of text (valid UTF-8) to pieces; they concatenate to text.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<pcre2_real_code_8> code_;
};

/// The pattern with \s and \S spelled as Unicode White_Space, which Oniguruma (HF) and
/// Rust's regex (tiktoken) use; PCRE2's UCP \s also takes U+180E. Exposed for tests.
std::string with_unicode_white_space(std::string_view pattern);

}  // namespace glm4::model
