#include "model/tokenizer/bpe_model.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <queue>

namespace glm4::model {
namespace {

// Below this many symbols a rescan per merge beats keeping a heap.
constexpr std::size_t max_small_symbols = 64;
constexpr std::uint32_t no_rank = std::numeric_limits<std::uint32_t>::max();

}  // namespace

void bpe_model::add_token(token_id id, std::string bytes, bool is_mergeable) {
  const auto index = static_cast<std::size_t>(id);
  if (index >= pieces_.size()) pieces_.resize(index + 1);
  if (is_mergeable) {
    if (bytes.size() == 1) byte_ids_[static_cast<std::uint8_t>(bytes[0])] = id;
    by_bytes_.insert_or_assign(bytes, id);
  }
  pieces_[index] = std::move(bytes);
}

void bpe_model::add_merge(token_id left, token_id right, std::uint32_t rank, token_id merged) {
  pairs_.insert(left, right, {rank, merged});
}

void bpe_model::finalize() {
  is_whole_.assign(pieces_.size(), false);
  if (ignore_merges_) return;
  std::vector<token_id> symbols;
  for (const auto& [bytes, id] : by_bytes_) {
    symbols.clear();
    for (char c : bytes) {
      if (const auto& b = byte_ids_[static_cast<std::uint8_t>(c)]) symbols.push_back(*b);
    }
    merge(symbols);
    is_whole_[static_cast<std::size_t>(id)] = symbols.size() == 1 && symbols[0] == id;
  }
}

std::optional<token_id> bpe_model::find(std::string_view bytes) const {
  const auto it = by_bytes_.find(bytes);
  if (it == by_bytes_.end()) return std::nullopt;
  return it->second;
}

const std::string* bpe_model::piece(token_id id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= pieces_.size() || !pieces_[id]) return nullptr;
  return &*pieces_[id];
}

void bpe_model::encode(std::string_view piece, std::vector<token_id>& out) const {
  if (const auto it = by_bytes_.find(piece); it != by_bytes_.end()) {
    if (ignore_merges_ || is_whole_[static_cast<std::size_t>(it->second)]) {
      out.push_back(it->second);
      return;
    }
  }
  if (piece.size() <= max_small_symbols) {
    // The common case merges on the stack: no allocation per piece.
    std::array<token_id, max_small_symbols> symbols;
    std::size_t n = 0;
    for (char c : piece) {
      if (const auto& b = byte_ids_[static_cast<std::uint8_t>(c)]) symbols[n++] = *b;
    }
    n = merge_in_place(symbols.data(), n);
    out.insert(out.end(), symbols.begin(), symbols.begin() + static_cast<std::ptrdiff_t>(n));
    return;
  }
  std::vector<token_id> symbols;
  symbols.reserve(piece.size());
  for (char c : piece) {
    if (const auto& b = byte_ids_[static_cast<std::uint8_t>(c)]) symbols.push_back(*b);
  }
  merge(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void bpe_model::merge(std::vector<token_id>& symbols) const {
  if (symbols.size() <= max_small_symbols) {
    merge_small(symbols);
  } else {
    merge_large(symbols);
  }
}

void bpe_model::merge_small(std::vector<token_id>& symbols) const {
  symbols.resize(merge_in_place(symbols.data(), symbols.size()));
}

// Each step merges the lowest-ranked adjacent pair, the leftmost one on a tie; ranks[i]
// caches the rank of (symbols[i], symbols[i + 1]). O(n^2), for short pieces.
std::size_t bpe_model::merge_in_place(token_id* symbols, std::size_t n) const {
  if (n < 2) return n;
  std::array<std::uint32_t, max_small_symbols> stack_ranks;
  std::vector<std::uint32_t> heap_ranks;
  std::uint32_t* ranks = stack_ranks.data();
  if (n > max_small_symbols) {
    heap_ranks.resize(n);
    ranks = heap_ranks.data();
  }
  const auto rank_at = [&](std::size_t i) {
    const merge_rule* rule = pairs_.find(symbols[i], symbols[i + 1]);
    return rule ? rule->rank : no_rank;
  };
  std::size_t num_pairs = n - 1;
  for (std::size_t i = 0; i < num_pairs; ++i) ranks[i] = rank_at(i);
  while (num_pairs > 0) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < num_pairs; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == no_rank) break;
    symbols[best] = pairs_.find(symbols[best], symbols[best + 1])->merged;
    std::copy(symbols + best + 2, symbols + num_pairs + 1, symbols + best + 1);
    std::copy(ranks + best + 1, ranks + num_pairs, ranks + best);
    --num_pairs;
    if (best < num_pairs) ranks[best] = rank_at(best);
    if (best > 0) ranks[best - 1] = rank_at(best - 1);
  }
  return num_pairs + 1;
}

// The same order of merges as merge_small in O(n log n): symbols live in a linked list and
// candidate pairs in a heap ordered by (rank, position). A popped candidate is stale when
// either side has changed since it was pushed; a symbol's id only ever grows into a longer
// token, so comparing ids tells.
void bpe_model::merge_large(std::vector<token_id>& symbols) const {
  const std::size_t n = symbols.size();
  if (n < 2) return;
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> prev(n);
  std::vector<std::size_t> next(n);
  std::vector<bool> alive(n, true);
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = i == 0 ? none : i - 1;
    next[i] = i + 1 == n ? none : i + 1;
  }
  struct candidate {
    std::uint32_t rank;
    std::size_t pos;
    token_id left;
    token_id right;
    bool operator>(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<candidate, std::vector<candidate>, std::greater<>> heap;
  const auto push = [&](std::size_t pos) {
    if (pos == none || next[pos] == none) return;
    if (const merge_rule* rule = pairs_.find(symbols[pos], symbols[next[pos]])) {
      heap.push({rule->rank, pos, symbols[pos], symbols[next[pos]]});
    }
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const candidate top = heap.top();
    heap.pop();
    const std::size_t right = next[top.pos];
    if (!alive[top.pos] || right == none || symbols[top.pos] != top.left || symbols[right] != top.right) {
      continue;
    }
    symbols[top.pos] = pairs_.find(top.left, top.right)->merged;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] != none) prev[next[right]] = top.pos;
    push(prev[top.pos]);
    push(top.pos);
  }
  std::size_t out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (alive[i]) symbols[out++] = symbols[i];
  }
  symbols.resize(out);
}

}  // namespace glm4::model
