// The paged KV pool: fixed-size blocks, per-sequence block tables, reference counts, and a prefix
// cache keyed by a chained hash of each full block's tokens.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/sequence.hpp"

namespace glm4::engine {

/// KV the model runner copies from block src to block dst before the step that writes into dst:
/// copy-on-write of a partly filled block that fork left shared.
struct block_copy {
  block_id src = 0;
  block_id dst = 0;
  bool operator==(const block_copy&) const = default;
};

/// Not thread-safe: one owner (the scheduler) calls it. The scheduler asks first (can_allocate,
/// can_append) and then commits (allocate, may_append), which then cannot fail.
///
/// Token convention (as nano-vllm): a sequence's token list already holds the token whose KV the
/// next step writes, so after allocate/may_append block_table.size() == ceil(num_tokens / block_size).
///
/// Prefix cache: a block gets hash(parent block's hash, its token ids) once it is full. A freed
/// block that holds the cache entry for its hash stays cached in an LRU list until a free block is
/// needed; uncached free blocks are handed out first. Hits are verified on the token ids and the
/// parent hash, not the hash alone. A hash is registered when may_append fills the block, before
/// the step writes its last slot; a sequence that hits it in that same step must run in the same
/// forward pass (KV written before attention reads), as in a unified batch.
class block_manager {
 public:
  block_manager(std::int32_t num_blocks, std::int32_t block_size = 16, bool enable_prefix_caching = true);

  std::int32_t block_size() const { return block_size_; }
  std::int32_t num_blocks() const { return static_cast<std::int32_t>(blocks_.size()); }
  /// Free blocks, cached ones included (they are evicted on demand).
  std::int32_t num_free_blocks() const;
  std::int32_t num_used_blocks() const { return num_blocks() - num_free_blocks(); }
  /// Free blocks that still hold a prefix-cache entry.
  std::int32_t num_cached_free_blocks() const { return static_cast<std::int32_t>(lru_.size()); }
  std::int32_t ref_count(block_id block) const;

  /// Free blocks allocate(seq) would take, counting prefix-cache hits exactly (a hit on a cached
  /// free block still leaves the free pool).
  std::int32_t num_blocks_to_allocate(const sequence& seq) const;
  /// Whether allocate(seq) would find enough blocks.
  bool can_allocate(const sequence& seq) const;
  /// Gives seq (holding no blocks) blocks for all its tokens, reusing cached full blocks of its
  /// prefix; sets num_cached_tokens to the tokens they cover. At least the last token is always
  /// left to compute (as vLLM), so num_cached_tokens < num_tokens and the step yields logits.
  /// Registers the hash of every full block (the step computes the whole prompt).
  void allocate(sequence& seq);
  /// The same, but registers hashes only for full blocks within the first num_tokens_to_cache
  /// tokens: a chunked prefill registers the rest with cache_blocks as steps compute them, so
  /// no other sequence hits a block whose KV is not written yet.
  void allocate(sequence& seq, std::int64_t num_tokens_to_cache);
  /// Registers the hashes of seq's full blocks within its first num_tokens tokens that lack one
  /// (call it when scheduling the step that computes them).
  void cache_blocks(sequence& seq, std::int64_t num_tokens);
  /// Releases seq's blocks (tail first, so a prefix outlives its tail in the cache).
  void deallocate(sequence& seq);
  /// The same after a failed step: blocks seq alone held lose their cache entry, since the
  /// step that was to write them may not have.
  void discard(sequence& seq);

  /// Whether may_append(seq) has the block it may need (a new one at a block boundary or a
  /// copy-on-write target).
  bool can_append(const sequence& seq) const;
  /// Makes room for seq's last token (just appended); registers the last block's hash if that
  /// token fills it. Returns the copy to perform when a shared partial block was split.
  std::optional<block_copy> may_append(sequence& seq);

  /// Child (same tokens, no blocks) shares all of parent's blocks; needs no free block.
  void fork(const sequence& parent, sequence& child);

  /// The first broken invariant, if any: counts, pool membership (no block free twice or both
  /// free and used), hash index consistency.
  std::optional<std::string> check_invariants() const;
  /// The same, plus: `live` holds every sequence that owns blocks, each block's ref count equals
  /// the number of live tables holding it (no leak, no over-free), tables have the right size,
  /// every hashed block carries the chain hash of its tokens, and every full block within the
  /// first num_cached_tokens tokens has one.
  std::optional<std::string> check_invariants(std::span<const sequence* const> live) const;

  /// The chained hash of one full block.
  static std::uint64_t hash_block(std::optional<std::uint64_t> parent_hash,
                                  std::span<const token_id> token_ids);

 private:
  struct block_state {
    std::int32_t ref_count = 0;
    std::optional<std::uint64_t> hash;  // set once full (prefix caching on)
    std::optional<std::uint64_t> parent_hash;
    std::vector<token_id> token_ids;  // the full block's tokens, to verify hits
    std::optional<std::list<block_id>::iterator> lru_position;
  };
  struct prefix_match {
    std::vector<block_id> blocks;
    std::int32_t num_free_hits = 0;  // hits on free (cached) blocks: they leave the free pool
  };

  prefix_match match_prefix(const sequence& seq) const;
  block_id take_free_block();
  void acquire(block_id block);
  void release(block_id block);
  void register_full(block_id block, std::optional<std::uint64_t> parent_hash,
                     std::span<const token_id> token_ids);
  void forget_hash(block_id block);
  std::optional<std::string> check_sequences(std::span<const sequence* const> live) const;

  std::int32_t block_size_;
  bool enable_prefix_caching_;
  std::vector<block_state> blocks_;
  std::deque<block_id> free_uncached_;
  std::list<block_id> lru_;  // free cached blocks, least recently freed first
  std::unordered_map<std::uint64_t, block_id> hash_to_block_;
};

}  // namespace glm4::engine
