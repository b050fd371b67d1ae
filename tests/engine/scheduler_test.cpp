// The scheduler alone: chunked prefill, the token budget, admission, preemption, abort.
#include <catch2/catch.hpp>

#include <numeric>

#include "engine/scheduler.hpp"

namespace glm4::engine {
namespace {

std::vector<token_id> iota_tokens(std::int64_t n, token_id first = 1) {
  std::vector<token_id> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

scheduler_config small_config() {
  scheduler_config c;
  c.num_blocks = 16;
  c.block_size = 4;
  c.max_num_batched_tokens = 8;
  c.max_num_seqs = 4;
  c.max_model_len = 64;
  c.watermark = 0.0;
  return c;
}

// Runs one step as the engine would: every sequence that reaches its end gains `token`.
scheduler_output run_step(scheduler& s, token_id token = 7) {
  scheduler_output out = s.schedule();
  s.postprocess(out);
  for (const auto& item : out.seqs)
    if (item.samples) s.append_token(*item.seq, token);
  return out;
}

std::vector<const sequence*> live(const scheduler& s) { return {s.running().begin(), s.running().end()}; }

}  // namespace

TEST_CASE("scheduler splits a long prompt into budget-sized chunks", "[scheduler]") {
  scheduler s(small_config());
  sequence seq(1, iota_tokens(20));
  s.add(seq);
  std::vector<std::int32_t> chunks;
  for (int i = 0; i < 3; ++i) {
    const auto out = run_step(s);
    REQUIRE(out.seqs.size() == 1);
    CHECK(out.seqs[0].first_position == 8 * i);
    chunks.push_back(out.seqs[0].num_new_tokens);
    CHECK(out.seqs[0].samples == (i == 2));
  }
  CHECK(chunks == std::vector<std::int32_t>{8, 8, 4});
  CHECK(seq.num_output_tokens() == 1);
  const auto decode = run_step(s);
  REQUIRE(decode.seqs.size() == 1);
  CHECK(decode.seqs[0].num_new_tokens == 1);
  CHECK(decode.seqs[0].first_position == 20);
  const auto l = live(s);
  CHECK_FALSE(s.blocks().check_invariants(l));
}

TEST_CASE("scheduler never starves decodes behind a long prefill", "[scheduler]") {
  scheduler s(small_config());
  sequence a(1, iota_tokens(3));
  s.add(a);
  run_step(s);  // a prefilled, decoding from now on
  sequence b(2, iota_tokens(30, 100));
  s.add(b);
  for (int i = 0; i < 4; ++i) {
    const auto out = run_step(s);
    REQUIRE(out.seqs.size() == 2);
    CHECK(out.seqs[0].seq == &a);
    CHECK(out.seqs[0].num_new_tokens == 1);
    CHECK(out.seqs[1].seq == &b);
    CHECK(out.seqs[1].num_new_tokens == 7);
    CHECK(out.num_batched_tokens <= 8);
  }
  CHECK(a.num_output_tokens() == 5);
  CHECK(b.num_output_tokens() == 0);
  CHECK(b.num_cached_tokens == 28);
}

TEST_CASE("scheduler admits first come, first served within max_num_seqs", "[scheduler]") {
  auto config = small_config();
  config.max_num_seqs = 2;
  config.max_num_batched_tokens = 64;
  scheduler s(config);
  sequence a(1, iota_tokens(2)), b(2, iota_tokens(2)), c(3, iota_tokens(2));
  s.add(a);
  s.add(b);
  s.add(c);
  const auto out = run_step(s);
  REQUIRE(out.seqs.size() == 2);
  CHECK(out.seqs[0].seq == &a);
  CHECK(out.seqs[1].seq == &b);
  CHECK(s.num_waiting() == 1);
  s.finish(a);
  const auto next = run_step(s);
  REQUIRE(next.seqs.size() == 2);
  CHECK(next.seqs[0].seq == &b);
  CHECK(next.seqs[1].seq == &c);
  CHECK(a.is_finished());
}

TEST_CASE("scheduler admits only when the blocks fit above the watermark", "[scheduler]") {
  auto config = small_config();
  config.num_blocks = 10;
  config.watermark = 0.2;  // 2 blocks kept free while something runs
  config.max_num_batched_tokens = 64;
  scheduler s(config);
  sequence a(1, iota_tokens(24)), b(2, iota_tokens(8, 50));  // 6 blocks, then 2 (+1 for a's decode)
  s.add(a);
  run_step(s);
  s.add(b);
  const auto out = run_step(s);
  REQUIRE(out.seqs.size() == 1);  // 4 free - 2 needed < 2 reserved
  CHECK(s.num_waiting() == 1);
  CHECK(s.blocks().num_free_blocks() == 3);
  s.finish(a);
  CHECK(s.blocks().num_free_blocks() == 10);
  const auto later = run_step(s);
  REQUIRE(later.seqs.size() == 1);
  CHECK(later.seqs[0].seq == &b);
}

TEST_CASE("scheduler rejects what can never run, with a reason", "[scheduler]") {
  auto config = small_config();
  scheduler s(config);  // 16 blocks of 4 tokens, max_model_len 64
  CHECK_FALSE(s.check_admissible(10, 20));
  const auto too_long = s.check_admissible(50, 20);
  REQUIRE(too_long);
  CHECK_THAT(*too_long, Catch::Contains("max_model_len 64"));
  CHECK(s.check_admissible(64, std::nullopt));
  CHECK(s.check_admissible(0, 1));
  config.num_blocks = 4;
  scheduler tiny(config);
  const auto no_fit = tiny.check_admissible(10, 20);
  REQUIRE(no_fit);
  CHECK_THAT(*no_fit, Catch::Contains("pool holds 4"));
}

TEST_CASE("scheduler preempts the newest sequence when a decode finds no block", "[scheduler]") {
  auto config = small_config();
  config.num_blocks = 4;
  config.max_num_batched_tokens = 64;
  scheduler s(config);
  sequence a(1, iota_tokens(4)), b(2, iota_tokens(4, 40));  // one full block each
  s.add(a);
  s.add(b);
  run_step(s);  // both prefilled; their first outputs need a second block each
  run_step(s);
  CHECK(s.blocks().num_free_blocks() == 0);
  const std::vector<token_id> b_tokens(b.token_ids().begin(), b.token_ids().end());
  for (int i = 0; i < 3; ++i) run_step(s);  // a fills its second block
  const auto out = run_step(s);           // a needs a third block: b goes
  REQUIRE(out.preempted.size() == 1);
  CHECK(out.preempted[0] == &b);
  CHECK(b.status == sequence_status::waiting);
  CHECK(b.block_table.empty());
  CHECK(s.waiting().front() == &b);
  CHECK(b.num_tokens() == std::ssize(b_tokens) + 3);  // its output survives preemption
  const auto l = live(s);
  CHECK_FALSE(s.blocks().check_invariants(l));
  s.finish(a);
  const auto resumed = run_step(s);  // b recomputes prompt and output
  REQUIRE(resumed.seqs.size() == 1);
  CHECK(resumed.seqs[0].seq == &b);
  // Its first block comes back from the prefix cache; a took its second (tail blocks go first).
  CHECK(resumed.seqs[0].first_position == 4);
  CHECK(resumed.seqs[0].num_new_tokens == 5);
}

TEST_CASE("scheduler abort frees blocks from any state", "[scheduler]") {
  auto config = small_config();
  scheduler s(config);
  sequence a(1, iota_tokens(20)), b(2, iota_tokens(5, 60));
  s.add(a);
  run_step(s);  // a is mid-prefill
  s.add(b);
  CHECK(s.blocks().num_used_blocks() == 5);
  s.abort(a);
  CHECK(a.is_finished());
  CHECK(s.blocks().num_used_blocks() == 0);
  s.abort(b);  // still waiting
  CHECK(b.is_finished());
  CHECK_FALSE(s.has_unfinished());
  CHECK(s.blocks().num_free_blocks() == config.num_blocks);
}

TEST_CASE("scheduler caches only the blocks a chunked prefill has computed", "[scheduler]") {
  scheduler s(small_config());
  const auto prompt = iota_tokens(20);
  sequence a(1, prompt), b(2, prompt);
  s.add(a);
  run_step(s);  // a computed 8 of 20 tokens: 2 full blocks
  s.abort(a);   // its other blocks were never written
  s.add(b);
  const auto out = run_step(s);
  REQUIRE(out.seqs.size() == 1);
  CHECK(out.seqs[0].first_position == 8);  // hits on the 2 computed blocks only
  CHECK(out.seqs[0].num_new_tokens == 8);
}

}  // namespace glm4::engine
