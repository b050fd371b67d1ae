// Block allocation, reference counting, copy-on-write and the LRU prefix cache.
#include "engine/block_manager.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace glm4::engine {
namespace {

void expects(bool condition, const char* what) {
  if (!condition) throw std::logic_error(std::string("block_manager: ") + what);
}

std::uint64_t mix64(std::uint64_t z) {  // splitmix64 finaliser: a bijection with full avalanche
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::span<const token_id> block_tokens(const sequence& seq, std::int64_t index, std::int32_t block_size) {
  return seq.token_ids().subspan(static_cast<std::size_t>(index * block_size),
                                 static_cast<std::size_t>(block_size));
}

}  // namespace

block_manager::block_manager(std::int32_t num_blocks, std::int32_t block_size, bool enable_prefix_caching)
    : block_size_(block_size),
      enable_prefix_caching_(enable_prefix_caching),
      blocks_(static_cast<std::size_t>(num_blocks)) {
  if (num_blocks <= 0 || block_size <= 0)
    throw std::invalid_argument("block_manager needs num_blocks > 0 and block_size > 0");
  for (block_id b = 0; b < num_blocks; ++b) free_uncached_.push_back(b);
}

std::uint64_t block_manager::hash_block(std::optional<std::uint64_t> parent_hash,
                                        std::span<const token_id> token_ids) {
  std::uint64_t h = parent_hash ? mix64(*parent_hash + 0x9e3779b97f4a7c15ull) : 0x243f6a8885a308d3ull;
  for (token_id t : token_ids) h = mix64(h ^ static_cast<std::uint32_t>(t));
  return h;
}

std::int32_t block_manager::num_free_blocks() const {
  return static_cast<std::int32_t>(free_uncached_.size() + lru_.size());
}

std::int32_t block_manager::ref_count(block_id block) const {
  return blocks_.at(static_cast<std::size_t>(block)).ref_count;
}

block_manager::prefix_match block_manager::match_prefix(const sequence& seq) const {
  prefix_match match;
  if (!enable_prefix_caching_) return match;
  // Only blocks that end before the last token can hit: that token must be computed.
  const std::int64_t num_hit_candidates = (seq.num_tokens() - 1) / block_size_;
  std::optional<std::uint64_t> parent;
  for (std::int64_t i = 0; i < num_hit_candidates; ++i) {
    const auto tokens = block_tokens(seq, i, block_size_);
    const std::uint64_t h = hash_block(parent, tokens);
    const auto found = hash_to_block_.find(h);
    if (found == hash_to_block_.end()) break;
    const block_state& block = blocks_[static_cast<std::size_t>(found->second)];
    if (block.parent_hash != parent || !std::ranges::equal(block.token_ids, tokens)) break;
    match.blocks.push_back(found->second);
    if (block.ref_count == 0) ++match.num_free_hits;
    parent = h;
  }
  return match;
}

std::int32_t block_manager::num_blocks_to_allocate(const sequence& seq) const {
  const prefix_match match = match_prefix(seq);
  const std::int64_t num_new = seq.num_blocks(block_size_) - std::ssize(match.blocks);
  return static_cast<std::int32_t>(num_new + match.num_free_hits);
}

bool block_manager::can_allocate(const sequence& seq) const {
  return num_blocks_to_allocate(seq) <= num_free_blocks();
}

void block_manager::allocate(sequence& seq) { allocate(seq, seq.num_tokens()); }

void block_manager::cache_blocks(sequence& seq, std::int64_t num_tokens) {
  if (!enable_prefix_caching_) return;
  const std::int64_t num_full = std::min(num_tokens, seq.num_tokens()) / block_size_;
  std::optional<std::uint64_t> parent;
  for (std::int64_t i = 0; i < num_full && i < std::ssize(seq.block_table); ++i) {
    const block_id b = seq.block_table[static_cast<std::size_t>(i)];
    if (!blocks_[static_cast<std::size_t>(b)].hash) register_full(b, parent, block_tokens(seq, i, block_size_));
    parent = blocks_[static_cast<std::size_t>(b)].hash;
  }
}

void block_manager::allocate(sequence& seq, std::int64_t num_tokens_to_cache) {
  expects(seq.block_table.empty(), "allocate on a sequence that already holds blocks");
  expects(can_allocate(seq), "allocate without enough free blocks");
  const prefix_match match = match_prefix(seq);
  // Take the hits first so that allocating the rest cannot evict them.
  for (block_id b : match.blocks) acquire(b);
  seq.block_table = match.blocks;
  seq.num_cached_tokens = std::ssize(match.blocks) * block_size_;
  std::optional<std::uint64_t> parent;
  if (!match.blocks.empty()) parent = blocks_[static_cast<std::size_t>(match.blocks.back())].hash;
  const std::int64_t num_full = seq.num_tokens() / block_size_;
  for (std::int64_t i = std::ssize(match.blocks); i < seq.num_blocks(block_size_); ++i) {
    const block_id b = take_free_block();
    seq.block_table.push_back(b);
    if (enable_prefix_caching_ && i < num_full && (i + 1) * block_size_ <= num_tokens_to_cache) {
      register_full(b, parent, block_tokens(seq, i, block_size_));
      parent = blocks_[static_cast<std::size_t>(b)].hash;
    }
  }
}

void block_manager::deallocate(sequence& seq) {
  for (auto it = seq.block_table.rbegin(); it != seq.block_table.rend(); ++it) release(*it);
  seq.block_table.clear();
  seq.num_cached_tokens = 0;
}

void block_manager::discard(sequence& seq) {
  for (auto it = seq.block_table.rbegin(); it != seq.block_table.rend(); ++it) {
    if (ref_count(*it) == 1) forget_hash(*it);
    release(*it);
  }
  seq.block_table.clear();
  seq.num_cached_tokens = 0;
}

bool block_manager::can_append(const sequence& seq) const {
  const std::int64_t position = seq.num_tokens() - 1;
  const bool starts_block = position % block_size_ == 0;
  const bool shares_last = !starts_block && !seq.block_table.empty() && ref_count(seq.block_table.back()) > 1;
  return !(starts_block || shares_last) || num_free_blocks() >= 1;
}

std::optional<block_copy> block_manager::may_append(sequence& seq) {
  const std::int64_t position = seq.num_tokens() - 1;
  expects(std::ssize(seq.block_table) == (position + block_size_ - 1) / block_size_,
          "may_append: the block table must cover all tokens but the last");
  expects(can_append(seq), "may_append without a free block");
  std::optional<block_copy> copy;
  if (position % block_size_ == 0) {
    seq.block_table.push_back(take_free_block());
  } else if (ref_count(seq.block_table.back()) > 1) {
    const block_id shared = seq.block_table.back();
    const block_id own = take_free_block();
    release(shared);
    seq.block_table.back() = own;
    copy = block_copy{shared, own};
  }
  if (enable_prefix_caching_ && seq.num_tokens() % block_size_ == 0) {
    const std::int64_t last = std::ssize(seq.block_table) - 1;
    std::optional<std::uint64_t> parent;
    if (last > 0) parent = blocks_[static_cast<std::size_t>(seq.block_table[last - 1])].hash;
    register_full(seq.block_table.back(), parent, block_tokens(seq, last, block_size_));
  }
  return copy;
}

void block_manager::fork(const sequence& parent, sequence& child) {
  expects(child.block_table.empty(), "fork into a sequence that already holds blocks");
  expects(child.num_tokens() == parent.num_tokens(), "fork: child must hold the parent's tokens");
  for (block_id b : parent.block_table) {
    expects(ref_count(b) > 0, "fork of a sequence holding a free block");
    ++blocks_[static_cast<std::size_t>(b)].ref_count;
  }
  child.block_table = parent.block_table;
  child.num_cached_tokens = parent.num_cached_tokens;
}

block_id block_manager::take_free_block() {
  block_id b = 0;
  if (!free_uncached_.empty()) {
    b = free_uncached_.front();
    free_uncached_.pop_front();
  } else {
    expects(!lru_.empty(), "no free KV block");
    b = lru_.front();  // evict the least recently freed cached block
    lru_.pop_front();
    block_state& block = blocks_[static_cast<std::size_t>(b)];
    block.lru_position.reset();
    forget_hash(b);
  }
  blocks_[static_cast<std::size_t>(b)].ref_count = 1;
  return b;
}

void block_manager::acquire(block_id b) {
  block_state& block = blocks_[static_cast<std::size_t>(b)];
  if (block.ref_count == 0) {
    expects(block.lru_position.has_value(), "acquire of a free block that is not cached");
    lru_.erase(*block.lru_position);
    block.lru_position.reset();
  }
  ++block.ref_count;
}

void block_manager::release(block_id b) {
  block_state& block = blocks_[static_cast<std::size_t>(b)];
  expects(block.ref_count > 0, "release of a free block (freed twice)");
  if (--block.ref_count > 0) return;
  if (block.hash) {
    // The cache entry may have moved to a duplicate that was evicted since: take it over.
    const auto [entry, inserted] = hash_to_block_.try_emplace(*block.hash, b);
    if (entry->second == b) {
      block.lru_position = lru_.insert(lru_.end(), b);
      return;
    }
    block.hash.reset();
    block.parent_hash.reset();
    block.token_ids.clear();
  }
  free_uncached_.push_back(b);
}

void block_manager::register_full(block_id b, std::optional<std::uint64_t> parent_hash,
                                  std::span<const token_id> token_ids) {
  block_state& block = blocks_[static_cast<std::size_t>(b)];
  block.hash = hash_block(parent_hash, token_ids);
  block.parent_hash = parent_hash;
  block.token_ids.assign(token_ids.begin(), token_ids.end());
  // A duplicate of a block already indexed keeps its hash (its children chain on it) but the
  // index keeps pointing at the first one.
  hash_to_block_.try_emplace(*block.hash, b);
}

void block_manager::forget_hash(block_id b) {
  block_state& block = blocks_[static_cast<std::size_t>(b)];
  if (block.hash) {
    const auto entry = hash_to_block_.find(*block.hash);
    if (entry != hash_to_block_.end() && entry->second == b) hash_to_block_.erase(entry);
  }
  block.hash.reset();
  block.parent_hash.reset();
  block.token_ids.clear();
}

}  // namespace glm4::engine
