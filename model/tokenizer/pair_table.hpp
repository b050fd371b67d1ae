// Merge rules of byte-level BPE keyed by the pair of token ids they join: an open
// addressing table, because the merge loop does one lookup per adjacent pair.
#pragma once

#include <cstdint>
#include <vector>

namespace glm4::model {

using token_id = std::int32_t;

struct merge_rule {
  std::uint32_t rank;  // lower merges first
  token_id merged;
};

class pair_table {
 public:
  /// Adds or replaces the rule for (left, right): the last rule given wins, as in HF.
  void insert(token_id left, token_id right, merge_rule rule);
  const merge_rule* find(token_id left, token_id right) const {
    if (slots_.empty()) return nullptr;
    const std::uint64_t key = make_key(left, right);
    for (std::size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      if (s.key == key) return &s.rule;
      if (s.key == empty_key) return nullptr;
    }
  }
  std::size_t size() const { return num_rules_; }

 private:
  struct slot {
    std::uint64_t key;
    merge_rule rule;
  };
  static constexpr std::uint64_t empty_key = ~std::uint64_t{0};

  static std::uint64_t make_key(token_id left, token_id right) {
    return (std::uint64_t{static_cast<std::uint32_t>(left)} << 32) | static_cast<std::uint32_t>(right);
  }
  // Both halves of the key must reach the low bits that pick a slot (murmur3's finaliser).
  static std::size_t hash(std::uint64_t key) {
    key ^= key >> 33;
    key *= 0xFF51AFD7ED558CCDull;
    key ^= key >> 33;
    return static_cast<std::size_t>(key);
  }
  void grow();

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t num_rules_ = 0;
};

}  // namespace glm4::model
