// How the grouped attention kernel (kernels/cuda/grouped_attention.cuh) splits each row's context
// over several blocks when a step has too few (row, KV head) pairs to fill the GPU: a decode step
// of one sequence has 2 for glm-4-9b. Each block then covers a piece, and a second pass merges the
// pieces' softmax states. Pure arithmetic, so it is tested on the CPU.
#pragma once

#include <algorithm>
#include <cstdint>

namespace glm4::kernels {

struct attention_split {
  std::int64_t splits = 1;          // pieces per row
  std::int64_t keys_per_split = 0;  // a whole number of tiles; the last piece may be shorter
};

/// Decided from shapes only: rows, KV heads and the widest context the block table allows
/// (max_keys), never from the contexts themselves, so a recorded decode step keeps its split.
/// Aims at about two blocks per SM, each piece at least one tile, at most max_splits pieces.
inline attention_split plan_attention_split(std::int64_t num_tokens, std::int64_t num_kv_heads, std::int64_t max_keys,
                                            std::int64_t tile, std::int64_t num_sms, std::int64_t max_splits) {
  const std::int64_t items = std::max<std::int64_t>(1, num_tokens * num_kv_heads);
  const std::int64_t tiles = std::max<std::int64_t>(1, (max_keys + tile - 1) / tile);
  const std::int64_t wanted = (2 * std::max<std::int64_t>(num_sms, 1) + items - 1) / items;
  const std::int64_t splits = std::clamp<std::int64_t>(wanted, 1, std::max<std::int64_t>(1, std::min(tiles, max_splits)));
  const std::int64_t tiles_per_split = (tiles + splits - 1) / splits;
  return {(tiles + tiles_per_split - 1) / tiles_per_split, tiles_per_split * tile};  // no empty last piece
}

}  // namespace glm4::kernels
