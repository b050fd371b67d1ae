// A stand-in model for engine tests: its "KV" is the (token, position) written to each slot, and
// the logits of a row are a hash of the KV its sequence reads through its block table. Reading a
// slot the context does not own (wrong table, missed copy-on-write, stale prefix-cache hit) either
// throws or changes the logits, so scheduler bugs show up as wrong tokens.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <numeric>

#include "engine/llm_engine.hpp"
#include "engine/sampler.hpp"
#include "engine/step_executor.hpp"

namespace glm4::engine::testing {

inline std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// Logits over `vocab` ids as a function of a context of tokens (positions 0, 1, ...).
inline std::vector<float> fake_logits(std::span<const token_id> context, std::int64_t vocab) {
  std::uint64_t h = 0x1234;
  for (std::size_t p = 0; p < context.size(); ++p) h = mix(h ^ (static_cast<std::uint64_t>(context[p]) << 20) ^ p);
  std::vector<float> logits(static_cast<std::size_t>(vocab));
  for (auto& x : logits) {
    h = mix(h + 0x9e3779b97f4a7c15ull);
    x = static_cast<float>(static_cast<double>(h >> 11) / 9007199254740992.0 * 8.0 - 4.0);
  }
  return logits;
}

class fake_executor : public step_executor {
 public:
  fake_executor(std::int64_t num_blocks, std::int32_t block_size, std::int64_t vocab, std::vector<token_id> eos)
      : block_size_(block_size), vocab_(vocab), slots_(static_cast<std::size_t>(num_blocks * block_size)),
        sampler_(std::move(eos)) {}

  std::vector<sample_result> execute(const model::step_batch& batch, std::span<const block_copy> copies,
                                     std::span<const row_sampling> rows) override {
    if (fail_next) {
      fail_next = false;
      throw std::runtime_error("device lost");
    }
    model::validate(batch);
    ++num_steps;
    max_step_tokens = std::max(max_step_tokens, batch.num_tokens());
    max_step_seqs = std::max(max_step_seqs, batch.num_seqs());
    num_copies += static_cast<std::int64_t>(copies.size());
    for (const block_copy& c : copies)
      for (std::int32_t i = 0; i < block_size_; ++i)
        slots_[static_cast<std::size_t>(c.dst * block_size_ + i)] = slots_[static_cast<std::size_t>(c.src * block_size_ + i)];
    // Every write of the step lands before any read, as store_kv precedes attention per layer.
    for (std::int64_t t = 0; t < batch.num_tokens(); ++t)
      slots_[static_cast<std::size_t>(batch.slot_mapping[t])] = std::pair{batch.token_ids[t], batch.positions[t]};
    std::vector<sample_result> results;
    last_logits.clear();
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const std::int32_t row = batch.logit_rows[r];
      std::int64_t s = 0;
      while (batch.query_start[static_cast<std::size_t>(s + 1)] <= row) ++s;
      std::vector<token_id> context;
      for (std::int32_t p = 0; p <= batch.positions[static_cast<std::size_t>(row)]; ++p) {
        const std::int32_t block = batch.block_table[static_cast<std::size_t>(s * batch.max_blocks_per_seq + p / block_size_)];
        const auto& kv = slots_[static_cast<std::size_t>(block * block_size_ + p % block_size_)];
        if (!kv || kv->second != p) throw std::logic_error("read of an unwritten slot at position " + std::to_string(p));
        context.push_back(kv->first);
      }
      const auto logits = fake_logits(context, vocab_);
      last_logits.push_back(logits);
      results.push_back(sampler_.sample(logits, *rows[r].params, rows[r].state));
    }
    return results;
  }

  bool fail_next = false;
  std::int64_t num_steps = 0, max_step_tokens = 0, max_step_seqs = 0, num_copies = 0;
  std::vector<std::vector<float>> last_logits;

 private:
  std::int32_t block_size_;
  std::int64_t vocab_;
  std::vector<std::optional<std::pair<token_id, std::int32_t>>> slots_;
  sampler sampler_;
};

/// What an unbatched, unpreempted run would generate: prompt then sampled tokens, stopping at
/// max_tokens or an eos / stop id (after min_tokens).
inline std::vector<token_id> reference_run(std::vector<token_id> tokens, const sampling_params& params, std::uint64_t seed,
                                           std::int64_t vocab, const std::vector<token_id>& eos, std::int64_t max_model_len) {
  const sampler s(eos);
  const std::size_t num_prompt = tokens.size();
  std::vector<token_id> output;
  while (true) {
    const auto logits = fake_logits(tokens, vocab);
    const std::span<const token_id> prompt(tokens.data(), num_prompt);
    const token_id next = s.sample(logits, params, {prompt, output, seed}).token;
    tokens.push_back(next);
    output.push_back(next);
    const bool may_stop = std::ssize(output) >= params.min_tokens;
    const bool is_eos = !params.ignore_eos && std::find(eos.begin(), eos.end(), next) != eos.end();
    const bool is_stop = std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), next) != params.stop_token_ids.end();
    if (may_stop && (is_eos || is_stop)) break;
    if (params.max_tokens && std::ssize(output) >= *params.max_tokens) break;
    if (std::ssize(tokens) >= max_model_len) break;
  }
  return output;
}

/// A small engine over the fake executor: blocks of 4 tokens, 16-token steps, 8 sequences,
/// 128-token sequences, eos id 3, vocabulary 64.
inline constexpr std::int64_t small_vocab = 64;
inline const std::vector<token_id> small_eos{3};

inline engine_config small_engine_config(std::int32_t num_blocks = 64, std::int32_t max_num_seqs = 8) {
  engine_config c;
  c.scheduler.num_blocks = num_blocks;
  c.scheduler.block_size = 4;
  c.scheduler.max_num_batched_tokens = 16;
  c.scheduler.max_num_seqs = max_num_seqs;
  c.scheduler.max_model_len = 128;
  c.eos_token_ids = small_eos;
  c.vocab_size = small_vocab;
  return c;
}

/// A small random engine for property tests: a pool of min_blocks to max_blocks blocks of 2, 4 or
/// 8 tokens, steps of min_step_tokens to 48 tokens, 64-token sequences; `pick(lo, hi)` draws an
/// int in [lo, hi].
template <class Pick>
engine_config random_engine_config(Pick& pick, int min_blocks, int max_blocks, int min_step_tokens, std::int64_t vocab,
                                   const std::vector<token_id>& eos) {
  engine_config config;
  config.scheduler.num_blocks = pick(min_blocks, max_blocks);
  config.scheduler.block_size = std::array{2, 4, 8}[static_cast<std::size_t>(pick(0, 2))];
  config.scheduler.enable_prefix_caching = pick(0, 3) != 0;
  config.scheduler.max_num_batched_tokens = pick(min_step_tokens, 48);
  config.scheduler.max_num_seqs = pick(1, 8);
  config.scheduler.max_model_len = 64;
  config.scheduler.watermark = 0.05;
  config.eos_token_ids = eos;
  config.vocab_size = vocab;
  return config;
}

/// first, first + 1, ... (n ids).
inline std::vector<token_id> prompt_of(std::int64_t n, token_id first = 10) {
  std::vector<token_id> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

/// Greedy, ignoring eos, exactly max_tokens long.
inline sampling_params greedy(std::int32_t max_tokens) {
  sampling_params p;
  p.temperature = 0.0;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

}  // namespace glm4::engine::testing
