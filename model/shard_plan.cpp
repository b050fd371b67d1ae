#include "model/shard_plan.hpp"

#include <cstring>
#include <memory>
#include <stdexcept>

namespace glm4::model {
namespace {

std::string text(std::int64_t value) { return std::to_string(value); }
std::string range_text(index_range range) { return text(range.begin) + ".." + text(range.end); }

/// Part `rank` of `parts` equal parts of [0, total); total % parts == 0.
index_range even_part(std::int64_t total, std::int64_t parts, std::int64_t rank) {
  const std::int64_t size = total / parts;
  return {rank * size, (rank + 1) * size};
}

/// A (rows, columns.count()) copy of columns [columns.begin, columns.end) of a 2-D tensor.
kernels::tensor copy_columns(const kernels::tensor& source, index_range columns) {
  if (columns.begin == 0 && columns.end == source.dim(1)) return source;
  const std::int64_t rows = source.dim(0);
  const std::size_t element = kernels::dtype_size(source.type);
  const std::size_t source_pitch = static_cast<std::size_t>(source.dim(1)) * element;
  const std::size_t slice_bytes = static_cast<std::size_t>(columns.count()) * element;
  kernels::tensor slice;
  slice.type = source.type;
  slice.shape = {rows, columns.count()};
  std::shared_ptr<std::byte[]> memory(new std::byte[slice.nbytes()]);
  slice.data = memory.get();
  slice.owner = memory;
  const auto* from = static_cast<const std::byte*>(source.data) + static_cast<std::size_t>(columns.begin) * element;
  auto* to = static_cast<std::byte*>(slice.data);
  for (std::int64_t row = 0; row < rows; ++row) std::memcpy(to + row * slice_bytes, from + row * source_pitch, slice_bytes);
  return slice;
}

/// Rows `first` then rows `second` of a tensor stacked into one new tensor.
kernels::tensor stack_rows(const kernels::tensor& source, index_range first, index_range second) {
  if (first.begin == 0 && first.end == second.begin && second.end == source.dim(0)) return source;
  const kernels::tensor a = kernels::view_rows(source, first.begin, first.count());
  const kernels::tensor b = kernels::view_rows(source, second.begin, second.count());
  kernels::tensor stacked;
  stacked.type = source.type;
  stacked.shape = source.shape;
  stacked.shape[0] = first.count() + second.count();
  std::shared_ptr<std::byte[]> memory(new std::byte[stacked.nbytes()]);
  stacked.data = memory.get();
  stacked.owner = memory;
  std::memcpy(stacked.data, a.data, a.nbytes());
  std::memcpy(static_cast<std::byte*>(stacked.data) + a.nbytes(), b.data, b.nbytes());
  return stacked;
}

kernels::tensor rows_of(const kernels::tensor& source, index_range rows) {
  return kernels::view_rows(source, rows.begin, rows.count());
}

}  // namespace

shard_plan make_shard_plan(const model_config& config, std::int64_t tp_size, std::int64_t tp_rank, index_range layers) {
  const std::int64_t heads = config.num_heads, kv_heads = config.num_kv_heads, ffn = config.intermediate_size;
  auto refuse = [&](const std::string& why) {
    throw std::invalid_argument("shard plan (tp " + text(tp_size) + ", rank " + text(tp_rank) + ", layers " + range_text(layers) +
                                "): " + why);
  };
  if (tp_size < 1) refuse("the tensor-parallel size must be at least 1");
  if (tp_rank < 0 || tp_rank >= tp_size) refuse("the rank is outside 0.." + text(tp_size));
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0) refuse("the model's head counts are inconsistent");
  if (heads % tp_size != 0) refuse(text(heads) + " query heads do not split over " + text(tp_size) + " ranks");
  if (kv_heads % tp_size != 0 && tp_size % kv_heads != 0)
    refuse(text(kv_heads) + " KV heads and " + text(tp_size) + " ranks: one must divide the other");
  if (ffn % tp_size != 0) refuse("the FFN size " + text(ffn) + " does not split over " + text(tp_size) + " ranks");
  if (layers.begin < 0 || layers.end > config.num_layers || layers.count() <= 0)
    refuse("the layer range is empty or outside the model's 0.." + text(config.num_layers));

  shard_plan plan;
  plan.tp_size = tp_size;
  plan.tp_rank = tp_rank;
  plan.layers = layers;
  plan.has_embedding = layers.begin == 0;
  plan.has_lm_head = layers.end == config.num_layers;
  plan.q_heads = even_part(heads, tp_size, tp_rank);
  if (tp_size <= kv_heads) {
    plan.kv_heads = even_part(kv_heads, tp_size, tp_rank);
  } else {
    // Query head h reads KV head h / (Hq / Hkv); a rank's Hq / tp query heads all fall in the
    // group of KV head r * Hkv / tp because tp is a multiple of Hkv.
    const std::int64_t kv_head = tp_rank * kv_heads / tp_size;
    plan.kv_heads = {kv_head, kv_head + 1};
    plan.kv_replicas = tp_size / kv_heads;
  }
  const std::int64_t head_dim = config.head_dim;
  plan.q_rows = {plan.q_heads.begin * head_dim, plan.q_heads.end * head_dim};
  plan.kv_rows = {plan.kv_heads.begin * head_dim, plan.kv_heads.end * head_dim};
  plan.o_columns = plan.q_rows;
  plan.ffn = even_part(ffn, tp_size, tp_rank);
  plan.gate_rows = plan.ffn;
  plan.up_rows = {ffn + plan.ffn.begin, ffn + plan.ffn.end};
  plan.down_columns = plan.ffn;
  plan.embedding_rows = {0, config.vocab_size};
  // Balanced, not necessarily equal: a vocabulary need not divide by tp.
  plan.lm_head_rows = {tp_rank * config.vocab_size / tp_size, (tp_rank + 1) * config.vocab_size / tp_size};
  return plan;
}

model_config local_config(const model_config& config, const shard_plan& plan) {
  model_config local = config;
  local.num_layers = plan.layers.count();
  local.num_heads = plan.q_heads.count();
  local.num_kv_heads = plan.kv_heads.count();
  local.intermediate_size = plan.ffn.count();
  return local;
}

model_weights shard_weights(const model_weights& full, const model_config& config, const shard_plan& plan) {
  if (static_cast<std::int64_t>(full.layers.size()) != config.num_layers)
    throw std::invalid_argument("shard_weights: " + text(static_cast<std::int64_t>(full.layers.size())) +
                                " layers, the config has " + text(config.num_layers));
  model_weights shard;
  if (plan.has_embedding) shard.tok_embeddings = rows_of(full.tok_embeddings, plan.embedding_rows);
  if (plan.has_lm_head) {
    shard.final_norm = full.final_norm;
    shard.lm_head = rows_of(full.lm_head, plan.lm_head_rows);
  }
  for (std::int64_t index = plan.layers.begin; index < plan.layers.end; ++index) {
    const layer_weights& layer = full.layers[static_cast<std::size_t>(index)];
    layer_weights local;
    local.attn_norm = layer.attn_norm;
    local.wq = rows_of(layer.wq, plan.q_rows);
    local.wk = rows_of(layer.wk, plan.kv_rows);
    local.wv = rows_of(layer.wv, plan.kv_rows);
    if (layer.bq) local.bq = rows_of(*layer.bq, plan.q_rows);
    if (layer.bk) local.bk = rows_of(*layer.bk, plan.kv_rows);
    if (layer.bv) local.bv = rows_of(*layer.bv, plan.kv_rows);
    local.wo = copy_columns(layer.wo, plan.o_columns);
    local.post_attn_norm = layer.post_attn_norm;
    local.ffn_norm = layer.ffn_norm;
    local.w_gate_up = stack_rows(layer.w_gate_up, plan.gate_rows, plan.up_rows);
    local.w_down = copy_columns(layer.w_down, plan.down_columns);
    local.post_ffn_norm = layer.post_ffn_norm;
    shard.layers.push_back(std::move(local));
  }
  return shard;
}

std::uint64_t shard_weight_bytes(const model_config& config, const shard_plan& plan) {
  const auto hidden = static_cast<std::uint64_t>(config.hidden_size);
  const auto q = static_cast<std::uint64_t>(plan.q_rows.count()), kv = static_cast<std::uint64_t>(plan.kv_rows.count());
  const auto ffn = static_cast<std::uint64_t>(plan.ffn.count());
  // Per layer: the norms, q/k/v (and their biases), o_proj, gate and up, down.
  const std::uint64_t norms = (config.post_norms ? 4 : 2) * hidden;
  const std::uint64_t attention = (q + 2 * kv) * hidden + (config.qkv_bias ? q + 2 * kv : 0) + hidden * q;
  const std::uint64_t mlp = 3 * ffn * hidden;
  std::uint64_t elements = (norms + attention + mlp) * static_cast<std::uint64_t>(plan.layers.count());
  const auto vocab = static_cast<std::uint64_t>(config.vocab_size);
  if (plan.has_embedding) elements += vocab * hidden;
  if (plan.has_lm_head) {
    elements += hidden;  // final norm
    if (!(config.tie_word_embeddings && plan.has_embedding)) elements += static_cast<std::uint64_t>(plan.lm_head_rows.count()) * hidden;
  }
  return elements * kernels::dtype_size(config.torch_dtype);
}

std::string describe(const shard_plan& plan) {
  std::string line = "tp " + text(plan.tp_rank) + "/" + text(plan.tp_size) + " layers " + range_text(plan.layers) + ": q heads " +
                     range_text(plan.q_heads) + ", kv heads " + range_text(plan.kv_heads);
  if (plan.kv_replicas > 1) line += " (x" + text(plan.kv_replicas) + ")";
  line += ", ffn " + range_text(plan.ffn) + ", vocab " + range_text(plan.lm_head_rows);
  if (plan.has_embedding) line += ", embedding";
  if (plan.has_lm_head) line += ", lm head";
  return line;
}

}  // namespace glm4::model
