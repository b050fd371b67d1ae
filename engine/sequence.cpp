// Token views and forking of a sequence.
#include "engine/sequence.hpp"

#include <stdexcept>

#include "engine/distinct_ids.hpp"

namespace glm4::engine {

sequence::sequence(sequence_id id, std::vector<token_id> prompt_token_ids)
    : id_(id), token_ids_(std::move(prompt_token_ids)), num_prompt_tokens_(std::ssize(token_ids_)) {
  if (token_ids_.empty()) throw std::invalid_argument("a sequence needs at least one prompt token");
}

std::span<const token_id> sequence::prompt_token_ids() const {
  return std::span<const token_id>(token_ids_).first(static_cast<std::size_t>(num_prompt_tokens_));
}

std::span<const token_id> sequence::distinct_prompt_token_ids() const {
  if (distinct_prompt_.empty()) {  // a prompt has at least one token, so empty means not yet
    const std::span<const token_id> prompt = prompt_token_ids();
    distinct_prompt_.assign(prompt.begin(), prompt.end());
    sort_distinct(distinct_prompt_);
  }
  return distinct_prompt_;
}

std::span<const token_id> sequence::output_token_ids() const {
  return std::span<const token_id>(token_ids_).subspan(static_cast<std::size_t>(num_prompt_tokens_));
}

std::int64_t sequence::num_blocks(std::int32_t block_size) const {
  return (num_tokens() + block_size - 1) / block_size;
}

sequence sequence::fork_as(sequence_id child_id) const {
  sequence child = *this;
  child.id_ = child_id;
  child.block_table.clear();
  child.num_cached_tokens = 0;
  return child;
}

}  // namespace glm4::engine
