#include "model/tokenizer/added_tokens.hpp"

#include <algorithm>

#include "model/tokenizer/utf8.hpp"

namespace glm4::model {
namespace {

// Start of the white space run that ends at text[end].
std::size_t white_space_start(std::string_view text, std::size_t begin, std::size_t end) {
  std::size_t pos = end;
  while (pos > begin) {
    std::size_t start = pos - 1;
    while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    std::size_t cursor = start;
    const std::optional<char32_t> cp = utf8::decode_next(text, cursor);
    if (!cp || cursor != pos || !utf8::is_white_space(*cp)) break;
    pos = start;
  }
  return pos;
}

// End of the white space run that starts at text[begin].
std::size_t white_space_end(std::string_view text, std::size_t begin) {
  std::size_t pos = begin;
  while (pos < text.size()) {
    std::size_t cursor = pos;
    const std::optional<char32_t> cp = utf8::decode_next(text, cursor);
    if (!cp || !utf8::is_white_space(*cp)) break;
    pos = cursor;
  }
  return pos;
}

}  // namespace

added_token_matcher::added_token_matcher(std::vector<added_token> tokens) : tokens_(std::move(tokens)) {
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& candidates : by_first_byte_) {
    std::stable_sort(candidates.begin(), candidates.end(), [&](std::size_t a, std::size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

void added_token_matcher::split(std::string_view text, std::vector<text_segment>& out) const {
  std::size_t emitted = 0;  // text[0, emitted) is already in out
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto& candidates = by_first_byte_[static_cast<unsigned char>(text[pos])];
    const added_token* found = nullptr;
    for (std::size_t index : candidates) {
      if (text.substr(pos).starts_with(tokens_[index].content)) {
        found = &tokens_[index];
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    std::size_t begin = pos;
    std::size_t end = pos + found->content.size();
    if (found->lstrip) begin = white_space_start(text, emitted, begin);
    if (found->rstrip) end = white_space_end(text, end);
    if (begin > emitted) out.push_back({text.substr(emitted, begin - emitted), std::nullopt});
    out.push_back({text.substr(begin, end - begin), found->id});
    emitted = end;
    pos = end;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), std::nullopt});
}

}  // namespace glm4::model
