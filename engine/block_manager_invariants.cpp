// block_manager::check_invariants: the consistency checks tests run after every operation.
#include <sstream>

#include "engine/block_manager.hpp"

namespace glm4::engine {
namespace {

template <class... Parts>
std::string describe(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace

std::optional<std::string> block_manager::check_invariants(std::span<const sequence* const> live) const {
  if (auto problem = check_invariants()) return problem;
  return check_sequences(live);
}

std::optional<std::string> block_manager::check_invariants() const {
  const std::size_t num_total = blocks_.size();
  std::vector<int> num_in_pools(num_total, 0);
  for (block_id b : free_uncached_) {
    if (b < 0 || static_cast<std::size_t>(b) >= num_total) return describe("free list holds bad id ", b);
    ++num_in_pools[static_cast<std::size_t>(b)];
    if (blocks_[static_cast<std::size_t>(b)].hash) return describe("uncached free block ", b, " has a hash");
  }
  for (auto it = lru_.begin(); it != lru_.end(); ++it) {
    const block_id b = *it;
    if (b < 0 || static_cast<std::size_t>(b) >= num_total) return describe("LRU holds bad id ", b);
    ++num_in_pools[static_cast<std::size_t>(b)];
    const block_state& block = blocks_[static_cast<std::size_t>(b)];
    if (!block.lru_position || *block.lru_position != it) return describe("LRU position of ", b, " is stale");
    const auto entry = block.hash ? hash_to_block_.find(*block.hash) : hash_to_block_.end();
    if (entry == hash_to_block_.end() || entry->second != b)
      return describe("cached free block ", b, " is not the index entry of its hash");
  }
  std::size_t num_used = 0;
  for (std::size_t b = 0; b < num_total; ++b) {
    const block_state& block = blocks_[b];
    if (block.ref_count < 0) return describe("block ", b, " has ref count ", block.ref_count);
    if (block.ref_count > 0) ++num_used;
    const int expected_in_pools = block.ref_count == 0 ? 1 : 0;
    if (num_in_pools[b] != expected_in_pools)
      return describe("block ", b, " (ref count ", block.ref_count, ") is in ", num_in_pools[b], " free pools");
    if (block.lru_position && block.ref_count > 0) return describe("used block ", b, " sits in the LRU");
  }
  if (num_used + free_uncached_.size() + lru_.size() != num_total)
    return describe("free + used != total: ", free_uncached_.size() + lru_.size(), " + ", num_used, " != ",
                    num_total);
  for (const auto& [hash, b] : hash_to_block_) {
    if (b < 0 || static_cast<std::size_t>(b) >= num_total) return describe("hash index holds bad id ", b);
    if (blocks_[static_cast<std::size_t>(b)].hash != hash)
      return describe("hash index entry points at block ", b, " holding another hash");
  }
  return std::nullopt;
}

std::optional<std::string> block_manager::check_sequences(std::span<const sequence* const> live) const {
  std::vector<std::int32_t> num_holders(blocks_.size(), 0);
  for (const sequence* seq : live) {
    // A sequence whose last token awaits may_append holds the blocks of the others.
    const std::int64_t num_placed = seq->awaits_slot ? seq->num_tokens() - 1 : seq->num_tokens();
    if (std::ssize(seq->block_table) != (num_placed + block_size_ - 1) / block_size_)
      return describe("sequence ", seq->id(), " holds ", seq->block_table.size(), " blocks for ",
                      seq->num_tokens(), " tokens");
    // Equal only while a planned step computes its last token (it counts as cached once planned).
    if (seq->num_cached_tokens > seq->num_tokens())
      return describe("sequence ", seq->id(), " has more tokens cached than it holds");
    std::optional<std::uint64_t> parent;
    for (std::size_t i = 0; i < seq->block_table.size(); ++i) {
      const block_id b = seq->block_table[i];
      if (b < 0 || static_cast<std::size_t>(b) >= blocks_.size())
        return describe("sequence ", seq->id(), " holds bad id ", b);
      ++num_holders[static_cast<std::size_t>(b)];
      const auto end = static_cast<std::int64_t>(i + 1) * block_size_;
      const std::int64_t num_known = seq->num_tokens() - (seq->has_pending_token ? 1 : 0);
      if (!enable_prefix_caching_ || end > num_known) continue;
      const auto tokens = seq->token_ids().subspan(i * static_cast<std::size_t>(block_size_),
                                                   static_cast<std::size_t>(block_size_));
      const std::uint64_t expected = hash_block(parent, tokens);
      const auto& hash = blocks_[static_cast<std::size_t>(b)].hash;
      // Blocks a chunked prefill has not computed yet carry no hash; computed ones must.
      if (hash ? *hash != expected : end <= seq->num_cached_tokens)
        return describe("full block ", i, " of sequence ", seq->id(), " lacks its chain hash");
      parent = expected;
    }
  }
  for (std::size_t b = 0; b < blocks_.size(); ++b)
    if (blocks_[b].ref_count != num_holders[b])
      return describe("block ", b, " has ref count ", blocks_[b].ref_count, " but ", num_holders[b],
                      " live holders (leaked or over-freed)");
  return std::nullopt;
}

}  // namespace glm4::engine
