#include "model/tokenizer/pair_table.hpp"

namespace glm4::model {

void pair_table::insert(token_id left, token_id right, merge_rule rule) {
  // Keep the load factor at most 1/2 so probe runs stay short.
  if ((num_rules_ + 1) * 2 > slots_.size()) grow();
  const std::uint64_t key = make_key(left, right);
  for (std::size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    slot& s = slots_[i];
    if (s.key == key) {
      s.rule = rule;
      return;
    }
    if (s.key == empty_key) {
      s = {key, rule};
      ++num_rules_;
      return;
    }
  }
}

void pair_table::grow() {
  std::vector<slot> old = std::move(slots_);
  const std::size_t capacity = old.empty() ? 1024 : old.size() * 2;
  slots_.assign(capacity, slot{empty_key, {}});
  mask_ = capacity - 1;
  for (const slot& s : old) {
    if (s.key == empty_key) continue;
    for (std::size_t i = hash(s.key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == empty_key) {
        slots_[i] = s;
        break;
      }
    }
  }
}

}  // namespace glm4::model
