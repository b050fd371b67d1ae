// Which slice of each canonical weight one rank holds: tensor parallel over the ranks of a
// pipeline stage, pipeline parallel over contiguous layer ranges. Pure arithmetic plus the
// function that cuts a host model_weights (views into the mmapped checkpoint) to one rank.
//
// Tensor parallel (Megatron style, one all-reduce after attention and one after the MLP):
//   wq, bq      rows of query heads [h0, h1)          wo      columns of those heads
//   wk, wv, bk  rows of the rank's KV heads            w_down  columns [f0, f1) of the FFN
//   w_gate_up   gate rows [f0, f1) and up rows [F + f0, F + f1), stacked (gate first)
//   norms       replicated
// With more ranks than KV heads (GLM-4 has 2), each KV head is replicated on tp / Hkv ranks:
// rank r holds KV head r * Hkv / tp, the one its query heads read.
// Embedding: replicated. A lookup costs nothing and a vocab-split table would need a masked
// lookup plus an all-reduce of (T, H) on the first stage; the price is V * H per rank there.
// LM head: split by vocabulary rows. It is the largest matmul of a step (151552 x 4096 in
// glm-4-9b), rows are zero-copy views, and each rank's logits (T, V / tp) are gathered only
// for the rows that sample (a greedy pick is a local argmax plus an all-gather of (value, id)).
#pragma once

#include <cstdint>
#include <string>

#include "model/model_config.hpp"
#include "model/model_weights.hpp"

namespace glm4::model {

/// Half-open index range [begin, end).
struct index_range {
  std::int64_t begin = 0;
  std::int64_t end = 0;

  std::int64_t count() const { return end - begin; }
  bool contains(std::int64_t index) const { return index >= begin && index < end; }
  bool operator==(const index_range&) const = default;
};

struct shard_plan {
  std::int64_t tp_size = 1;
  std::int64_t tp_rank = 0;
  index_range layers;                  // global layer indices this stage runs
  bool has_embedding = false;          // first stage: layers start at 0
  bool has_lm_head = false;            // last stage: final norm and LM head

  index_range q_heads;                 // query heads [h0, h1)
  index_range kv_heads;                // KV heads held (one replica when tp > Hkv)
  std::int64_t kv_replicas = 1;        // ranks holding each KV head: max(1, tp / Hkv)
  index_range q_rows;                  // rows of wq and bq: q_heads * D
  index_range kv_rows;                 // rows of wk, wv, bk, bv: kv_heads * D
  index_range o_columns;               // columns of wo (= q_rows)
  index_range ffn;                     // FFN slice [f0, f1) of F
  index_range gate_rows;               // rows of w_gate_up: [f0, f1)
  index_range up_rows;                 // rows of w_gate_up: [F + f0, F + f1)
  index_range down_columns;            // columns of w_down (= ffn)
  index_range embedding_rows;          // rows of tok_embeddings: all V (replicated)
  index_range lm_head_rows;            // rows of lm_head: this rank's vocabulary slice
};

/// The plan of rank `tp_rank` of `tp_size` running `layers`. Throws std::invalid_argument when
/// tp_size does not divide the query heads or the FFN size, when neither tp_size nor the KV
/// head count divides the other, or when the rank or the layer range is out of bounds.
shard_plan make_shard_plan(const model_config& config, std::int64_t tp_size, std::int64_t tp_rank, index_range layers);

/// The rank's local shapes: num_layers, heads, KV heads and intermediate_size of its shard,
/// so one rank's forward sees an ordinary (smaller) model. vocab_size stays the full V.
model_config local_config(const model_config& config, const shard_plan& plan);

/// Cuts host weights (views into the mapped checkpoint) to one rank. layers[i] of the result is
/// global layer plan.layers.begin + i; tok_embeddings is empty off the first stage, final_norm
/// and lm_head off the last. Row slices (wq, wk, wv, biases, lm_head) are zero-copy views that
/// keep the mapping alive. wo and w_down columns, and the stacked gate/up rows (two separate
/// row blocks), are copied into new host memory when the rank holds only part of them; with
/// tp_size 1 nothing is copied.
model_weights shard_weights(const model_weights& full, const model_config& config, const shard_plan& plan);

/// Bytes of weights the rank holds, in the checkpoint's dtype (config.torch_dtype): what it reads
/// from the checkpoint and keeps on its device. A tied head costs nothing on a rank that holds the
/// embedding. Computed from shapes alone, for plans made before any weight is loaded.
std::uint64_t shard_weight_bytes(const model_config& config, const shard_plan& plan);

/// "tp 1/4 layers 0..20: q heads 8..16, kv heads 0..1 (x2), ffn 3424..6848, vocab 37888..75776, embedding".
std::string describe(const shard_plan& plan);

}  // namespace glm4::model
