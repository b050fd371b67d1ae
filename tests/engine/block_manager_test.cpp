// Block manager unit tests: allocation, prefix hits, LRU eviction, append, fork and copy-on-write.
#include "engine/block_manager.hpp"

#include <catch2/catch.hpp>
#include <vector>

namespace glm4::engine {
namespace {

void require_consistent(const block_manager& manager, std::vector<const sequence*> live) {
  const auto problem = manager.check_invariants(live);
  INFO(problem.value_or("ok"));
  REQUIRE_FALSE(problem.has_value());
}

// Appends a token and makes room for it, as the scheduler does each decode step.
std::optional<block_copy> append(block_manager& manager, sequence& seq, token_id token) {
  seq.append_token(token);
  REQUIRE(manager.can_append(seq));
  return manager.may_append(seq);
}

}  // namespace

TEST_CASE("allocate and deallocate give every block back", "[block_manager]") {
  block_manager manager(8, 4);
  sequence seq(1, {1, 2, 3, 4, 5, 6});
  REQUIRE(manager.can_allocate(seq));
  manager.allocate(seq);
  CHECK(seq.block_table.size() == 2);
  CHECK(seq.num_cached_tokens == 0);
  CHECK(manager.num_used_blocks() == 2);
  require_consistent(manager, {&seq});
  manager.deallocate(seq);
  CHECK(seq.block_table.empty());
  CHECK(manager.num_free_blocks() == 8);
  CHECK(manager.num_cached_free_blocks() == 1);  // the one full block stays cached
  require_consistent(manager, {});
  manager.deallocate(seq);  // a second deallocate holds nothing to free
  require_consistent(manager, {});
}

TEST_CASE("can_allocate refuses what the pool cannot hold", "[block_manager]") {
  block_manager manager(2, 4);
  CHECK(manager.can_allocate(sequence(1, std::vector<token_id>(8, 1))));
  CHECK_FALSE(manager.can_allocate(sequence(2, std::vector<token_id>(9, 1))));
  sequence seq(3, std::vector<token_id>(9, 1));
  CHECK_THROWS_AS(manager.allocate(seq), std::logic_error);
}

TEST_CASE("a shared prompt prefix reuses the cached full blocks", "[block_manager]") {
  block_manager manager(16, 4);
  sequence a(1, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  manager.allocate(a);
  sequence b(2, {1, 2, 3, 4, 5, 6, 7, 8, 42, 43, 44});
  REQUIRE(manager.can_allocate(b));
  manager.allocate(b);
  CHECK(b.num_cached_tokens == 8);
  CHECK(b.block_table[0] == a.block_table[0]);
  CHECK(b.block_table[1] == a.block_table[1]);
  CHECK(b.block_table[2] != a.block_table[2]);
  CHECK(manager.ref_count(a.block_table[0]) == 2);
  CHECK(manager.ref_count(a.block_table[2]) == 1);
  sequence c(3, {1, 2, 3, 9, 5, 6, 7, 8, 9});  // differs inside the first block: no hit at all
  manager.allocate(c);
  CHECK(c.num_cached_tokens == 0);
  require_consistent(manager, {&a, &b, &c});
}

TEST_CASE("a partial block never hits", "[block_manager]") {
  block_manager manager(16, 4);
  sequence a(1, {1, 2, 3, 4, 5, 6});  // blocks [1 2 3 4] [5 6 _ _]
  manager.allocate(a);
  sequence b(2, {1, 2, 3, 4, 5, 6, 7});
  manager.allocate(b);
  CHECK(b.num_cached_tokens == 4);
  CHECK(b.block_table[1] != a.block_table[1]);
  require_consistent(manager, {&a, &b});
}

TEST_CASE("the last token is always computed even on a full-prefix hit", "[block_manager]") {
  block_manager manager(16, 4);
  sequence a(1, {1, 2, 3, 4, 5, 6, 7, 8});
  manager.allocate(a);
  sequence same(2, {1, 2, 3, 4, 5, 6, 7, 8});
  manager.allocate(same);
  CHECK(same.num_cached_tokens == 4);  // block 2 holds the last token: recomputed in a new block
  CHECK(same.block_table[1] != a.block_table[1]);
  sequence longer(3, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  manager.allocate(longer);
  CHECK(longer.num_cached_tokens == 8);
  require_consistent(manager, {&a, &same, &longer});
}

TEST_CASE("freed blocks stay cached and hit later and can_allocate counts those hits", "[block_manager]") {
  block_manager manager(3, 2);
  sequence a(1, {1, 2, 3, 4, 5});
  manager.allocate(a);
  manager.deallocate(a);
  CHECK(manager.num_cached_free_blocks() == 2);
  sequence b(2, {1, 2, 3, 4, 9});  // two cached hits plus one new block: exactly the pool
  REQUIRE(manager.can_allocate(b));
  manager.allocate(b);
  CHECK(b.num_cached_tokens == 4);
  CHECK(manager.num_free_blocks() == 0);
  require_consistent(manager, {&b});
}

TEST_CASE("uncached blocks go first and then cached ones least recently freed", "[block_manager]") {
  block_manager manager(4, 2);
  sequence a(1, {1, 2, 3, 4});
  sequence b(2, {5, 6, 7, 8});
  manager.allocate(a);
  manager.allocate(b);
  const auto a_blocks = a.block_table;
  const auto b_blocks = b.block_table;
  manager.deallocate(a);  // LRU: a1 a0 (tail first)
  manager.deallocate(b);  // LRU: a1 a0 b1 b0
  CHECK(manager.num_cached_free_blocks() == 4);

  sequence c(3, {9, 10, 11});  // needs two blocks: evicts a1, then a0
  manager.allocate(c);
  CHECK(c.block_table == std::vector<block_id>{a_blocks[1], a_blocks[0]});
  manager.deallocate(c);  // [9 10] cached, [11] uncached; LRU: b1 b0 c0

  sequence d(4, {5, 6, 7, 8, 0});  // hits b0 b1; its new block is the uncached one
  manager.allocate(d);
  CHECK(d.num_cached_tokens == 4);
  CHECK(d.block_table == std::vector<block_id>{b_blocks[0], b_blocks[1], a_blocks[0]});
  manager.deallocate(d);
  sequence e(5, {1, 2, 3});  // A's prefix was evicted: no hit
  manager.allocate(e);
  CHECK(e.num_cached_tokens == 0);
  require_consistent(manager, {&e});
}

TEST_CASE("a hit moves a block to the back of the LRU order", "[block_manager]") {
  block_manager manager(4, 2);
  sequence a(1, {1, 2, 3});
  sequence b(2, {5, 6, 7});
  manager.allocate(a);
  manager.allocate(b);
  const block_id a0 = a.block_table[0];
  const block_id b0 = b.block_table[0];
  manager.deallocate(a);  // LRU: a0; uncached: a1
  manager.deallocate(b);  // LRU: a0 b0; uncached: a1 b1
  sequence again(3, {1, 2, 3});
  manager.allocate(again);  // hits a0, takes the uncached a1
  manager.deallocate(again);  // LRU: b0 a0
  sequence x(4, {8, 8, 8, 8, 8, 8, 8});  // four blocks: two uncached, then b0, then a0
  manager.allocate(x);
  CHECK(x.block_table[2] == b0);
  CHECK(x.block_table[3] == a0);
  require_consistent(manager, {&x});
}

TEST_CASE("a duplicate block takes over the cache entry once the original is evicted", "[block_manager]") {
  block_manager manager(4, 2);
  sequence a(1, {1, 2, 3, 4});
  manager.allocate(a);
  sequence duplicate(2, {1, 2, 3, 4});  // hits [1 2]; [3 4] holds the last token: a second copy
  manager.allocate(duplicate);
  CHECK(duplicate.block_table[0] == a.block_table[0]);
  CHECK(duplicate.block_table[1] != a.block_table[1]);
  manager.deallocate(a);  // a's [3 4] becomes the cached free block
  sequence filler(3, {9, 9, 9});  // takes the uncached block, then evicts a's [3 4]
  manager.allocate(filler);
  require_consistent(manager, {&duplicate, &filler});
  manager.deallocate(filler);
  const block_id duplicate_tail = duplicate.block_table[1];
  manager.deallocate(duplicate);  // its [3 4] now holds the cache entry for that hash
  sequence again(4, {1, 2, 3, 4, 5});
  manager.allocate(again);
  CHECK(again.num_cached_tokens == 4);
  CHECK(again.block_table[1] == duplicate_tail);
  require_consistent(manager, {&again});
}

TEST_CASE("may_append adds a block at a boundary and caches a block once full", "[block_manager]") {
  block_manager manager(4, 4);
  sequence a(1, {1, 2, 3});
  manager.allocate(a);
  CHECK_FALSE(append(manager, a, 4).has_value());
  CHECK(a.block_table.size() == 1);
  require_consistent(manager, {&a});
  CHECK_FALSE(append(manager, a, 5).has_value());
  CHECK(a.block_table.size() == 2);
  require_consistent(manager, {&a});
  sequence b(2, {1, 2, 3, 4, 9});  // the block that became full in may_append hits
  manager.allocate(b);
  CHECK(b.num_cached_tokens == 4);
  CHECK(b.block_table[0] == a.block_table[0]);
  require_consistent(manager, {&a, &b});
}

TEST_CASE("can_append is false at a boundary with no free block", "[block_manager]") {
  block_manager manager(1, 2);
  sequence a(1, {1});
  manager.allocate(a);
  a.append_token(2);
  CHECK(manager.can_append(a));  // fills the current block
  manager.may_append(a);
  a.append_token(3);
  CHECK_FALSE(manager.can_append(a));
  CHECK_THROWS_AS(manager.may_append(a), std::logic_error);
}

TEST_CASE("fork shares blocks and the first writer into a shared partial block copies it", "[block_manager]") {
  block_manager manager(8, 4);
  sequence parent(1, {1, 2, 3, 4, 5, 6});
  manager.allocate(parent);
  sequence child = parent.fork_as(2);
  manager.fork(parent, child);
  CHECK(child.block_table == parent.block_table);
  CHECK(manager.ref_count(parent.block_table[1]) == 2);
  require_consistent(manager, {&parent, &child});

  const block_id shared = parent.block_table[1];
  const auto copy = append(manager, parent, 7);
  REQUIRE(copy.has_value());
  CHECK(copy->src == shared);
  CHECK(copy->dst == parent.block_table[1]);
  CHECK(parent.block_table[1] != shared);
  CHECK(parent.block_table[0] == child.block_table[0]);
  CHECK(manager.ref_count(shared) == 1);
  require_consistent(manager, {&parent, &child});

  CHECK_FALSE(append(manager, child, 8).has_value());  // now the sole owner: writes in place
  CHECK(child.block_table[1] == shared);
  require_consistent(manager, {&parent, &child});
  manager.deallocate(parent);
  manager.deallocate(child);
  require_consistent(manager, {});
  CHECK(manager.num_free_blocks() == 8);
}

TEST_CASE("copy-on-write needs a free block", "[block_manager]") {
  block_manager manager(2, 4);
  sequence parent(1, {1, 2, 3, 4, 5});
  manager.allocate(parent);
  sequence child = parent.fork_as(2);
  manager.fork(parent, child);
  CHECK(manager.num_free_blocks() == 0);
  parent.append_token(6);
  CHECK_FALSE(manager.can_append(parent));
}

TEST_CASE("check_invariants reports a leaked block", "[block_manager]") {
  block_manager manager(4, 2);
  sequence a(1, {1, 2, 3});
  sequence b(2, {4});
  manager.allocate(a);
  manager.allocate(b);
  const auto problem = manager.check_invariants(std::vector<const sequence*>{&b});
  REQUIRE(problem.has_value());
  CHECK(problem->find("leaked") != std::string::npos);
}

TEST_CASE("without prefix caching nothing hits and freed blocks are plain free", "[block_manager]") {
  block_manager manager(8, 2, false);
  sequence a(1, {1, 2, 3, 4, 5});
  manager.allocate(a);
  sequence b(2, {1, 2, 3, 4, 5});
  manager.allocate(b);
  CHECK(b.num_cached_tokens == 0);
  manager.deallocate(a);
  CHECK(manager.num_cached_free_blocks() == 0);
  require_consistent(manager, {&b});
}

TEST_CASE("the block hash chains on the parent", "[block_manager]") {
  const std::vector<token_id> tokens = {1, 2, 3, 4};
  const auto root = block_manager::hash_block(std::nullopt, tokens);
  CHECK(root == block_manager::hash_block(std::nullopt, tokens));
  CHECK(root != block_manager::hash_block(root, tokens));
  CHECK(block_manager::hash_block(1, tokens) != block_manager::hash_block(2, tokens));
  CHECK(root != block_manager::hash_block(std::nullopt, std::vector<token_id>{1, 2, 4, 3}));
}

}  // namespace glm4::engine
