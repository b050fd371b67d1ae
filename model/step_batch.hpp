// One forward step over a mixed batch, as the host describes it: which tokens, where they sit in
// their sequences, where their keys and values go in the paged cache, and which rows need logits.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace glm4::model {

/// Which rows of a sequence want logits.
enum class logit_rows { none, last, all };

/// Rows are grouped by sequence: sequence s owns rows [query_start[s], query_start[s + 1]).
struct step_batch {
  std::int32_t block_size = 16;
  std::vector<std::int32_t> token_ids;     // (T)
  std::vector<std::int32_t> positions;     // (T) position of each token in its sequence
  std::vector<std::int32_t> slot_mapping;  // (T) block * block_size + offset of each token's K/V
  std::vector<std::int32_t> query_start{0};  // (num_seqs + 1)
  std::vector<std::int32_t> context_len;   // (num_seqs) cached tokens after this step
  std::vector<std::int32_t> block_table;   // (num_seqs, max_blocks_per_seq) row-major; unused = 0
  std::int32_t max_blocks_per_seq = 0;
  std::vector<std::int32_t> logit_rows;    // (R) rows whose logits come back, in this order

  std::int64_t num_tokens() const { return static_cast<std::int64_t>(token_ids.size()); }
  std::int64_t num_seqs() const { return static_cast<std::int64_t>(context_len.size()); }
  bool operator==(const step_batch&) const = default;
};

/// Appends one sequence: `tokens` at positions first_position, first_position + 1, ... whose
/// cache blocks are `blocks` (enough for first_position + tokens.size() tokens). Its earlier
/// positions must already be in the cache. Widens every block table row when `blocks` is longer.
/// Throws std::invalid_argument when the blocks cannot hold the sequence.
void add_sequence(step_batch& batch, std::span<const std::int32_t> tokens, std::int32_t first_position,
                  std::span<const std::int32_t> blocks, logit_rows wanted);

/// Throws std::invalid_argument when the batch is inconsistent: array lengths, query_start not
/// running from 0 to T, a row's position outside its sequence's context, a slot that disagrees
/// with the block table, a logit row outside [0, T).
void validate(const step_batch& batch);

}  // namespace glm4::model
