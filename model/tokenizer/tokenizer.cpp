#include "model/tokenizer/tokenizer.hpp"

#include <algorithm>

#include "model/tokenizer/byte_level.hpp"
#include "model/tokenizer/utf8.hpp"

namespace glm4::model {

tokenizer::tokenizer(tokenizer_parts parts)
    : model_(std::move(parts.model)),
      pre_tokenizer_(parts.split_pattern),
      chat_template_(parts.chat_template),
      source_(std::move(parts.source)) {
  vocab_size_ = model_.id_limit();
  for (const added_token& token : parts.added_tokens) {
    std::optional<std::string> bytes;
    if (parts.decode_added_as_byte_level) bytes = byte_level::to_bytes(token.content);
    added_pieces_[token.id] = bytes ? std::move(*bytes) : token.content;
    added_is_special_[token.id] = token.is_special;
    vocab_size_ = std::max(vocab_size_, static_cast<std::size_t>(token.id) + 1);
  }
  added_ = added_token_matcher(std::move(parts.added_tokens));
  gmask_id_ = token_to_id("[gMASK]");
  sop_id_ = token_to_id("<sop>");
  eos_id_ = token_to_id("<|endoftext|>");
  for (std::string_view stop : {"<|endoftext|>", "<|user|>", "<|observation|>"}) {
    if (const auto id = token_to_id(stop)) end_of_reply_ids_.push_back(*id);
  }
}

std::vector<token_id> tokenizer::encode(std::string_view text) const {
  std::vector<token_id> ids;
  encode(text, ids);
  return ids;
}

void tokenizer::encode(std::string_view text, std::vector<token_id>& out) const {
  if (utf8::is_valid(text)) {
    encode_valid(text, out);
  } else {
    encode_valid(utf8::replace_invalid(text), out);
  }
}

void tokenizer::encode_valid(std::string_view text, std::vector<token_id>& out) const {
  std::vector<text_segment> segments;
  added_.split(text, segments);
  std::vector<std::string_view> pieces;
  for (const text_segment& segment : segments) {
    if (segment.token) {
      out.push_back(*segment.token);
      continue;
    }
    pieces.clear();
    pre_tokenizer_.split(segment.text, pieces);
    for (std::string_view piece : pieces) model_.encode(piece, out);
  }
}

bool tokenizer::append_piece(token_id id, std::string& out, bool skip_special) const {
  if (const auto it = added_pieces_.find(id); it != added_pieces_.end()) {
    if (!skip_special || !added_is_special_.at(id)) out += it->second;
    return true;
  }
  if (const std::string* piece = model_.piece(id)) {
    out += *piece;
    return true;
  }
  return false;
}

std::string tokenizer::decode(std::span<const token_id> ids, bool skip_special) const {
  std::string text;
  for (token_id id : ids) append_piece(id, text, skip_special);
  return text;
}

std::string tokenizer::render_chat(std::span<const chat_message> messages, bool add_generation_prompt) const {
  return render_glm4_chat(messages, add_generation_prompt);
}

std::vector<token_id> tokenizer::encode_chat(std::span<const chat_message> messages,
                                             bool add_generation_prompt) const {
  return encode(render_chat(messages, add_generation_prompt));
}

std::optional<token_id> tokenizer::token_to_id(std::string_view token) const {
  for (const added_token& added : added_.tokens()) {
    if (added.content == token) return added.id;
  }
  return model_.find(token);
}

std::optional<std::string> tokenizer::id_to_piece(token_id id) const {
  for (const added_token& added : added_.tokens()) {
    if (added.id == id) return added.content;
  }
  std::string piece;
  if (!append_piece(id, piece)) return std::nullopt;
  return piece;
}

bool tokenizer::is_special(token_id id) const {
  const auto it = added_is_special_.find(id);
  return it != added_is_special_.end() && it->second;
}

}  // namespace glm4::model
