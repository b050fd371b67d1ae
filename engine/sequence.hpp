// One sequence of tokens being generated: its prompt, its output so far, and its KV blocks.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/sampling_params.hpp"

namespace glm4::engine {

using block_id = std::int32_t;
using sequence_id = std::uint64_t;

/// Stands for a token a step in flight has yet to sample. Never a real id, so one that reached a
/// forward unfilled would be refused by the embedding's index check.
inline constexpr token_id pending_token_id = -1;

// Life of a sequence:
//
//   add     +---------+  schedule: blocks allocated   +---------+
//  -------->| WAITING |------------------------------>| RUNNING |
//           +---------+<------------------------------+---------+
//                |        preempt: blocks freed, KV        |
//                |        recomputed when rescheduled      |
//          abort |                                         | stop id or string, max_tokens,
//                v                                         | model length or abort:
//           +----------+                                   | blocks freed
//           | FINISHED |<----------------------------------+
//           +----------+
enum class sequence_status { waiting, running, finished };

class sequence {
 public:
  sequence(sequence_id id, std::vector<token_id> prompt_token_ids);

  sequence_id id() const { return id_; }
  std::int64_t num_tokens() const { return std::ssize(token_ids_); }
  std::int64_t num_prompt_tokens() const { return num_prompt_tokens_; }
  std::int64_t num_output_tokens() const { return num_tokens() - num_prompt_tokens_; }

  /// Prompt then output, the order the KV cache holds them.
  std::span<const token_id> token_ids() const { return token_ids_; }
  std::span<const token_id> prompt_token_ids() const;
  /// The prompt's ids sorted, each once: all a repetition penalty reads. Worked out on first use
  /// and kept (the prompt never changes), so a step does not redo it for a long prompt.
  std::span<const token_id> distinct_prompt_token_ids() const;
  std::span<const token_id> output_token_ids() const;
  token_id last_token() const { return token_ids_.back(); }

  void append_token(token_id token) { token_ids_.push_back(token); }
  /// The last token becomes `token` (a placeholder resolved once its step has sampled it).
  void replace_last_token(token_id token) { token_ids_.back() = token; }

  /// Blocks needed to hold every token: ceil(num_tokens / block_size).
  std::int64_t num_blocks(std::int32_t block_size) const;

  /// A copy under another id with the same tokens and status, holding no blocks yet
  /// (block_manager::fork shares the parent's blocks with it).
  sequence fork_as(sequence_id child_id) const;

  bool is_finished() const { return status == sequence_status::finished; }

  // Bookkeeping owned by the block manager (block_table, num_cached_tokens) and the scheduler
  // (status). Invariant while blocks are held: block_table.size() == num_blocks(block_size).
  std::vector<block_id> block_table;
  // Leading tokens whose KV the cache holds: prefix-cache hits, then what steps have computed.
  std::int64_t num_cached_tokens = 0;
  sequence_status status = sequence_status::waiting;
  // The last token was appended after its step: may_append must place it before the next step.
  bool awaits_slot = false;
  // The last token is a placeholder (pending_token_id): a step still in flight samples it, and the
  // step planned after that one feeds it in on the device. No prefix-cache hash covers it.
  bool has_pending_token = false;

 private:
  sequence_id id_;
  std::vector<token_id> token_ids_;
  mutable std::vector<token_id> distinct_prompt_;  // empty until distinct_prompt_token_ids()
  std::int64_t num_prompt_tokens_;
};

}  // namespace glm4::engine
