// The GLM-4 tokenizer: byte-level BPE with GLM-4's split pattern and special tokens,
// loaded from tokenizer.json (HF) or tokenizer.model (tiktoken ranks).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/tokenizer/added_tokens.hpp"
#include "model/tokenizer/bpe_model.hpp"
#include "model/tokenizer/chat_template.hpp"
#include "model/tokenizer/pre_tokenizer.hpp"
#include "model/tokenizer/tokenizer_error.hpp"

namespace glm4::model {

/// What a loader reads from disk.
struct tokenizer_parts {
  bpe_model model;  // finalized
  std::vector<added_token> added_tokens;
  std::string split_pattern{glm4_split_pattern};
  // HF decodes an added token's content through the byte-level map as well (tokenizer.json);
  // tiktoken returns its bytes as they are.
  bool decode_added_as_byte_level = false;
  chat_template_kind chat_template = chat_template_kind::glm4_chat;
  std::string source;  // the file read, for messages
};

/// GLM-4's special tokens, in the order tokenization_chatglm.py appends them after the ranks.
inline constexpr std::string_view glm4_special_tokens[] = {
    "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
    "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>",
    "<|end_of_video|>"};

/// Immutable once built: encode, decode and the chat methods may run from many threads.
class tokenizer {
 public:
  /// dir/tokenizer.json when it exists, else dir/tokenizer.model (plus dir/tokenizer_config.json
  /// for the chat template and, with tokenizer.model, the special token ids).
  static tokenizer load(const std::filesystem::path& dir);
  static tokenizer load_tokenizer_json(const std::filesystem::path& file);
  /// config: a tokenizer_config.json whose added_tokens_decoder gives the special ids; without
  /// it GLM-4's specials follow the largest rank.
  static tokenizer load_tiktoken(const std::filesystem::path& file,
                                 const std::optional<std::filesystem::path>& config = std::nullopt);

  explicit tokenizer(tokenizer_parts parts);

  /// Ill-formed UTF-8 is first replaced as bytes.decode("utf-8", "replace") would; the text of
  /// a special token becomes that token. No [gMASK]<sop> prefix is added.
  std::vector<token_id> encode(std::string_view text) const;
  void encode(std::string_view text, std::vector<token_id>& out) const;

  /// The bytes the ids stand for (not necessarily valid UTF-8: one character may span ids).
  /// Ids without a piece, such as the padding rows of a model's vocabulary, are skipped.
  std::string decode(std::span<const token_id> ids, bool skip_special = false) const;
  /// Appends the bytes of one id; false when the id has no piece.
  bool append_piece(token_id id, std::string& out, bool skip_special = false) const;

  std::string render_chat(std::span<const chat_message> messages, bool add_generation_prompt = true) const;
  std::vector<token_id> encode_chat(std::span<const chat_message> messages,
                                    bool add_generation_prompt = true) const;
  chat_template_kind chat_template() const { return chat_template_; }

  /// One past the largest id, regular or added (1024 for the test fixture, 151343 for GLM-4).
  std::size_t vocab_size() const { return vocab_size_; }
  /// An added token's content, or the bytes of a regular token.
  std::optional<token_id> token_to_id(std::string_view token) const;
  /// The inverse of token_to_id; nullopt for an id without a piece.
  std::optional<std::string> id_to_piece(token_id id) const;
  bool is_special(token_id id) const;

  std::optional<token_id> gmask_id() const { return gmask_id_; }
  std::optional<token_id> sop_id() const { return sop_id_; }
  std::optional<token_id> eos_id() const { return eos_id_; }  // <|endoftext|>
  /// The ids that end a reply: <|endoftext|>, <|user|> and <|observation|>, those present.
  const std::vector<token_id>& end_of_reply_ids() const { return end_of_reply_ids_; }

  const std::string& source() const { return source_; }
  const std::string& split_pattern() const { return pre_tokenizer_.pattern(); }

 private:
  void encode_valid(std::string_view text, std::vector<token_id>& out) const;

  bpe_model model_;
  pre_tokenizer pre_tokenizer_;
  added_token_matcher added_;
  std::unordered_map<token_id, std::string> added_pieces_;  // decode bytes of added ids
  std::unordered_map<token_id, bool> added_is_special_;
  std::vector<token_id> end_of_reply_ids_;
  std::optional<token_id> gmask_id_;
  std::optional<token_id> sop_id_;
  std::optional<token_id> eos_id_;
  std::size_t vocab_size_ = 0;
  chat_template_kind chat_template_ = chat_template_kind::glm4_chat;
  std::string source_;
};

}  // namespace glm4::model
