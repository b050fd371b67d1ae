// Byte-level BPE over raw bytes: the regular (non-added) vocabulary and its merge rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/tokenizer/pair_table.hpp"

namespace glm4::model {

/// Fill with add_token/add_merge, then finalize() once; after that it is immutable and
/// encode() may run from many threads.
class bpe_model {
 public:
  /// ids need not be dense; a later token with the same bytes wins the bytes -> id lookup.
  /// A token that merging can never produce (a tokenizer.json entry outside the byte-level
  /// alphabet) passes is_mergeable = false: it only decodes.
  void add_token(token_id id, std::string bytes, bool is_mergeable = true);
  /// left and right must be registered tokens; rank orders the merges (lower first).
  void add_merge(token_id left, token_id right, std::uint32_t rank, token_id merged);
  /// A piece that is itself a token is that token, whatever the merges say (tiktoken's
  /// rule, HF's ignore_merges).
  void set_ignore_merges(bool ignore) { ignore_merges_ = ignore; }
  void finalize();

  /// Appends the ids of one pre-tokenized piece (raw bytes). Bytes without a token are
  /// dropped, as HF does when the model has no unk token.
  void encode(std::string_view piece, std::vector<token_id>& out) const;

  std::optional<token_id> find(std::string_view bytes) const;
  /// The bytes of a regular token; nullptr for an id the vocabulary does not have.
  const std::string* piece(token_id id) const;
  /// One past the largest regular id.
  std::size_t id_limit() const { return pieces_.size(); }
  std::size_t num_tokens() const { return by_bytes_.size(); }
  std::size_t num_merges() const { return pairs_.size(); }

  /// The two merge loops, exposed so tests can check they agree on long inputs.
  void merge_small(std::vector<token_id>& symbols) const;
  void merge_large(std::vector<token_id>& symbols) const;

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  void merge(std::vector<token_id>& symbols) const;
  std::size_t merge_in_place(token_id* symbols, std::size_t n) const;

  std::vector<std::optional<std::string>> pieces_;  // indexed by id
  std::unordered_map<std::string, token_id, string_hash, std::equal_to<>> by_bytes_;
  std::vector<std::optional<token_id>> byte_ids_ = std::vector<std::optional<token_id>>(256);
  pair_table pairs_;
  // is_whole_[id]: BPE over the token's own bytes yields exactly that token, so a piece
  // equal to it can skip merging.
  std::vector<bool> is_whole_;
  bool ignore_merges_ = false;
};

}  // namespace glm4::model
