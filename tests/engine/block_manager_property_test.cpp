// Randomised property test of the block manager: thousands of allocate / append / free / fork /
// readmit operations over a small pool, with the invariants and a simulated KV store checked
// after every one.
#include "engine/block_manager.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <random>
#include <vector>

namespace glm4::engine {
namespace {

constexpr std::int32_t num_pool_blocks = 16;
constexpr std::int32_t block_size = 4;
constexpr std::size_t max_live = 10;

// Stands in for the KV cache: which token each slot of each block holds.
struct fake_kv {
  std::vector<std::vector<std::optional<token_id>>> slots =
      std::vector<std::vector<std::optional<token_id>>>(num_pool_blocks,
                                                         std::vector<std::optional<token_id>>(block_size));

  std::optional<token_id>& slot(const sequence& seq, std::int64_t position) {
    const block_id b = seq.block_table[static_cast<std::size_t>(position / block_size)];
    return slots[static_cast<std::size_t>(b)][static_cast<std::size_t>(position % block_size)];
  }
};

struct stats {
  int num_allocations = 0;
  int num_hit_tokens = 0;
  int num_copies = 0;
  int num_refusals = 0;
};

class harness {
 public:
  harness(std::uint64_t seed, bool enable_prefix_caching)
      : manager_(num_pool_blocks, block_size, enable_prefix_caching), random_(seed) {}

  void run(int num_operations) {
    for (int op = 0; op < num_operations; ++op) {
      const int choice = pick(0, 99);
      if (choice < 25) add_new();
      else if (choice < 65) append_one();
      else if (choice < 78) free_one();
      else if (choice < 88) fork_one();
      else readmit_one();
      check(op);
    }
    while (!live_.empty()) {
      manager_.deallocate(live_.back());
      live_.pop_back();
    }
    check(num_operations);
    REQUIRE(manager_.num_free_blocks() == num_pool_blocks);
  }

  const stats& counts() const { return stats_; }

 private:
  // Plain modulo rather than a std distribution, whose algorithm differs between standard libraries.
  int pick(int lo, int hi) { return lo + static_cast<int>(random_() % static_cast<std::uint64_t>(hi - lo + 1)); }

  // Prompts drawn from a few shared stems so that full blocks repeat across sequences.
  std::vector<token_id> make_prompt() {
    static const std::vector<std::vector<token_id>> stems = {
        {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3}, {1, 2, 3, 4, 9, 9, 9, 9}, {7, 7, 7, 7, 7, 7, 7, 7}};
    const auto& stem = stems[static_cast<std::size_t>(pick(0, 2))];
    std::vector<token_id> prompt(stem.begin(), stem.begin() + pick(1, static_cast<int>(stem.size())));
    for (int i = pick(0, 5); i > 0; --i) prompt.push_back(pick(0, 3));
    return prompt;
  }

  void admit(sequence seq) {
    if (live_.size() >= max_live || !manager_.can_allocate(seq)) {
      ++stats_.num_refusals;
      return;
    }
    manager_.allocate(seq);
    ++stats_.num_allocations;
    stats_.num_hit_tokens += static_cast<int>(seq.num_cached_tokens);
    // The cached prefix must already hold exactly these tokens; the rest is computed now, into
    // blocks nobody else holds.
    for (std::int64_t p = 0; p < seq.num_tokens(); ++p) {
      const token_id token = seq.token_ids()[static_cast<std::size_t>(p)];
      if (p < seq.num_cached_tokens) {
        REQUIRE(kv_.slot(seq, p) == token);
      } else {
        REQUIRE(manager_.ref_count(seq.block_table[static_cast<std::size_t>(p / block_size)]) == 1);
        kv_.slot(seq, p) = token;
      }
    }
    seq.status = sequence_status::running;
    live_.push_back(std::move(seq));
  }

  void add_new() { admit(sequence(next_id_++, make_prompt())); }

  void append_one() {
    if (live_.empty()) return;
    const auto index = static_cast<std::size_t>(pick(0, static_cast<int>(live_.size()) - 1));
    sequence& seq = live_[index];
    seq.append_token(pick(0, 3));
    if (!manager_.can_append(seq)) {  // preempt: free its blocks, recompute later
      manager_.deallocate(seq);
      seq.status = sequence_status::waiting;
      waiting_.push_back(std::move(seq));
      live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(index));
      return;
    }
    if (const auto copy = manager_.may_append(seq)) {
      ++stats_.num_copies;
      kv_.slots[static_cast<std::size_t>(copy->dst)] = kv_.slots[static_cast<std::size_t>(copy->src)];
    }
    const std::int64_t position = seq.num_tokens() - 1;
    REQUIRE(manager_.ref_count(seq.block_table.back()) == 1);
    kv_.slot(seq, position) = seq.last_token();
  }

  void free_one() {
    if (live_.empty()) return;
    const auto index = static_cast<std::size_t>(pick(0, static_cast<int>(live_.size()) - 1));
    manager_.deallocate(live_[index]);
    live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(index));
  }

  void fork_one() {
    if (live_.empty() || live_.size() >= max_live) return;
    const auto index = static_cast<std::size_t>(pick(0, static_cast<int>(live_.size()) - 1));
    sequence child = live_[index].fork_as(next_id_++);
    manager_.fork(live_[index], child);
    live_.push_back(std::move(child));
  }

  void readmit_one() {
    if (waiting_.empty()) return;
    sequence seq = std::move(waiting_.front());
    waiting_.erase(waiting_.begin());
    admit(std::move(seq));
  }

  void check(int op) {
    std::vector<const sequence*> live;
    for (const auto& seq : live_) live.push_back(&seq);
    const auto problem = manager_.check_invariants(live);
    INFO("after operation " << op << ": " << problem.value_or("ok"));
    REQUIRE_FALSE(problem.has_value());
    REQUIRE(manager_.num_free_blocks() + manager_.num_used_blocks() == num_pool_blocks);
    for (const auto& seq : live_)
      for (std::int64_t p = 0; p < seq.num_tokens(); ++p)
        REQUIRE(kv_.slot(seq, p) == seq.token_ids()[static_cast<std::size_t>(p)]);
  }

  block_manager manager_;
  std::mt19937_64 random_;
  fake_kv kv_;
  std::vector<sequence> live_;
  std::vector<sequence> waiting_;
  sequence_id next_id_ = 1;
  stats stats_;
};

}  // namespace

TEST_CASE("random operations keep the block manager consistent", "[block_manager][property]") {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    INFO("seed " << seed);
    harness h(seed, true);
    h.run(5000);
    // The run must have exercised the interesting paths, not just survived.
    CHECK(h.counts().num_allocations > 100);
    CHECK(h.counts().num_hit_tokens > 0);
    CHECK(h.counts().num_copies > 0);
    CHECK(h.counts().num_refusals > 0);
  }
}

TEST_CASE("random operations without prefix caching stay consistent", "[block_manager][property]") {
  harness h(4, false);
  h.run(5000);
  CHECK(h.counts().num_hit_tokens == 0);
  CHECK(h.counts().num_copies > 0);
}

}  // namespace glm4::engine
