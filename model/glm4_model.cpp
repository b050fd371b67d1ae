#include "model/glm4_model.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>

#include "model/decode_padding.hpp"

namespace glm4::model {
namespace {

using kernels::dtype;
using kernels::tensor;

void expect_weight(const tensor& t, const std::vector<std::int64_t>& shape, const std::string& name) {
  if (t.empty()) throw std::invalid_argument("glm4_model: weight " + name + " is missing");
  if (t.type == dtype::i32 || t.shape != shape) {
    tensor wanted;
    wanted.type = t.type;
    wanted.shape = shape;
    throw std::invalid_argument("glm4_model: weight " + name + " is " + kernels::describe(t) + ", expected " +
                                kernels::describe(wanted) + " of a float type");
  }
}

void expect_optional(const std::optional<tensor>& t, bool wanted, const std::vector<std::int64_t>& shape, const std::string& name) {
  if (!wanted) return;
  if (!t) throw std::invalid_argument("glm4_model: weight " + name + " is missing");
  expect_weight(*t, shape, name);
}

// `c` holds the rank's local shapes (local_config), so a whole model is the plan of one rank.
void check_weights(const model_config& c, const shard_plan& plan, const model_weights& w) {
  const std::int64_t hidden = c.hidden_size, q_width = c.num_heads * c.head_dim, kv_width = c.num_kv_heads * c.head_dim;
  if (c.num_heads <= 0 || c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0)
    throw std::invalid_argument("glm4_model: num_heads must be a positive multiple of num_kv_heads");
  if (c.rotary_dim <= 0 || c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim)
    throw std::invalid_argument("glm4_model: rotary_dim must be even and within head_dim");
  if (plan.has_embedding) expect_weight(w.tok_embeddings, {c.vocab_size, hidden}, "tok_embeddings");
  if (plan.has_lm_head) {
    expect_weight(w.final_norm, {hidden}, "final_norm");
    expect_weight(w.lm_head, {plan.lm_head_rows.count(), hidden}, "lm_head");
  }
  if (static_cast<std::int64_t>(w.layers.size()) != c.num_layers)
    throw std::invalid_argument("glm4_model: " + std::to_string(w.layers.size()) + " layers of weights for " +
                                std::to_string(c.num_layers) + " layers");
  for (std::size_t i = 0; i < w.layers.size(); ++i) {
    const layer_weights& l = w.layers[i];
    const std::string at = "layers." + std::to_string(plan.layers.begin + static_cast<std::int64_t>(i)) + ".";
    expect_weight(l.attn_norm, {hidden}, at + "attn_norm");
    expect_weight(l.wq, {q_width, hidden}, at + "wq");
    expect_weight(l.wk, {kv_width, hidden}, at + "wk");
    expect_weight(l.wv, {kv_width, hidden}, at + "wv");
    expect_optional(l.bq, c.qkv_bias, {q_width}, at + "bq");
    expect_optional(l.bk, c.qkv_bias, {kv_width}, at + "bk");
    expect_optional(l.bv, c.qkv_bias, {kv_width}, at + "bv");
    expect_weight(l.wo, {hidden, q_width}, at + "wo");
    expect_weight(l.ffn_norm, {hidden}, at + "ffn_norm");
    expect_weight(l.w_gate_up, {2 * c.intermediate_size, hidden}, at + "w_gate_up");
    expect_weight(l.w_down, {hidden, c.intermediate_size}, at + "w_down");
    expect_optional(l.post_attn_norm, c.post_norms, {hidden}, at + "post_attn_norm");
    expect_optional(l.post_ffn_norm, c.post_norms, {hidden}, at + "post_ffn_norm");
  }
}

void check_group(const shard_plan& plan, const kernels::comm::communicator* group, const kernels::backend& backend) {
  if (plan.tp_size == 1 && !group) return;
  if (!group || group->size() != plan.tp_size || group->rank() != plan.tp_rank)
    throw std::invalid_argument("glm4_model: tensor-parallel rank " + std::to_string(plan.tp_rank) + " of " +
                                std::to_string(plan.tp_size) + " needs a communicator of that rank and size");
  if (group->memory() != backend.kind())
    throw std::invalid_argument("glm4_model: tensor-parallel rank " + std::to_string(plan.tp_rank) + " on " + backend.name() +
                                " was given a communicator for " +
                                (group->memory() == kernels::device_kind::cpu ? "host" : "GPU") + " memory");
}

// A tied head (or this rank's vocabulary slice of it) is rows of the embedding already on the
// device: a view of them, not a second copy. nullopt when the head has memory of its own.
std::optional<tensor> tied_head_view(const model_weights& host, const tensor& device_embedding) {
  const tensor& head = host.lm_head;
  const tensor& table = host.tok_embeddings;
  if (table.empty() || head.empty() || head.type != table.type || head.rank() != 2 || table.rank() != 2 ||
      head.dim(1) != table.dim(1))
    return std::nullopt;
  const auto* begin = static_cast<const std::byte*>(table.data);
  const auto* at = static_cast<const std::byte*>(head.data);
  const std::size_t row_bytes = table.nbytes() / static_cast<std::size_t>(table.dim(0));
  if (at < begin || at + head.nbytes() > begin + table.nbytes() || (at - begin) % static_cast<std::ptrdiff_t>(row_bytes) != 0)
    return std::nullopt;
  return kernels::view_rows(device_embedding, (at - begin) / static_cast<std::ptrdiff_t>(row_bytes), head.dim(0));
}

std::optional<tensor> to_device(kernels::backend& backend, const std::optional<tensor>& host, bool used) {
  if (!used || !host) return std::nullopt;
  return backend.to_device(*host);
}

// (rows, width) view of the first `rows` rows of a scratch buffer allocated with more.
tensor rows_of(const tensor& t, std::int64_t rows) { return kernels::view_rows(t, 0, rows); }

}  // namespace

glm4_model::glm4_model(const model_config& config, const model_weights& host_weights, kernels::backend& backend)
    : glm4_model(config, make_shard_plan(config, 1, 0, {0, config.num_layers}), host_weights, backend, nullptr) {}

glm4_model::glm4_model(const model_config& config, const shard_plan& plan, const model_weights& host_weights,
                       kernels::backend& backend, std::shared_ptr<kernels::comm::communicator> tensor_parallel)
    : config_(local_config(config, plan)), plan_(plan), tensor_parallel_(std::move(tensor_parallel)), backend_(backend) {
  check_weights(config_, plan_, host_weights);
  if (tensor_parallel_ || plan_.tp_size == 1) check_group(plan_, tensor_parallel_.get(), backend);
  if (plan_.has_embedding) weights_.tok_embeddings = backend.to_device(host_weights.tok_embeddings);
  if (plan_.has_lm_head) {
    weights_.final_norm = backend.to_device(host_weights.final_norm);
    weights_.lm_head = tied_head_view(host_weights, weights_.tok_embeddings).value_or(tensor{});
    if (weights_.lm_head.empty()) weights_.lm_head = backend.to_device(host_weights.lm_head);
  }
  for (const layer_weights& host : host_weights.layers) {
    layer_weights& layer = weights_.layers.emplace_back();
    layer.attn_norm = backend.to_device(host.attn_norm);
    layer.wq = backend.to_device(host.wq);
    layer.wk = backend.to_device(host.wk);
    layer.wv = backend.to_device(host.wv);
    layer.bq = to_device(backend, host.bq, config.qkv_bias);
    layer.bk = to_device(backend, host.bk, config.qkv_bias);
    layer.bv = to_device(backend, host.bv, config.qkv_bias);
    layer.wo = backend.to_device(host.wo);
    layer.post_attn_norm = to_device(backend, host.post_attn_norm, config.post_norms);
    layer.ffn_norm = backend.to_device(host.ffn_norm);
    layer.w_gate_up = backend.to_device(host.w_gate_up);
    layer.w_down = backend.to_device(host.w_down);
    layer.post_ffn_norm = to_device(backend, host.post_ffn_norm, config.post_norms);
  }
  if (!weights_.layers.empty()) kv_cache_dtype_ = default_kv_cache_dtype(backend.kind(), weights_.layers.front().wq.type);
}

void glm4_model::set_kv_cache_dtype(kernels::dtype type) {
  if (type == dtype::i32) throw std::invalid_argument("glm4_model: a KV cache holds F32, F16 or BF16, not I32");
  kv_cache_dtype_ = type;
}

bool glm4_model::reserve(const step_batch& batch) {
  const model_config& c = config_;
  scratch& s = scratch_;
  // At least one of everything, so that empty steps still get (0, width) views.
  const std::int64_t num_tokens = std::max<std::int64_t>(1, batch.num_tokens());
  const std::int64_t num_rows = std::max<std::int64_t>(1, static_cast<std::int64_t>(batch.logit_rows.size()));
  const std::int64_t num_seqs = std::max<std::int64_t>(1, batch.num_seqs());
  const std::int64_t table = std::max<std::int64_t>(1, static_cast<std::int64_t>(batch.block_table.size()));
  const bool moves = num_tokens > s.token_capacity || num_rows > s.row_capacity || num_seqs > s.seq_capacity ||
                     table > s.table_capacity;
  if (num_tokens > s.token_capacity) {
    const std::int64_t n = num_tokens;
    s.ids = backend_.alloc(dtype::i32, {n});
    s.positions = backend_.alloc(dtype::i32, {n});
    s.slots = backend_.alloc(dtype::i32, {n});
    s.hidden = backend_.alloc(dtype::f32, {n, c.hidden_size});
    s.normed = backend_.alloc(dtype::f32, {n, c.hidden_size});
    s.q = backend_.alloc(dtype::f32, {n, c.num_heads * c.head_dim});
    s.k = backend_.alloc(dtype::f32, {n, c.num_kv_heads * c.head_dim});
    s.v = backend_.alloc(dtype::f32, {n, c.num_kv_heads * c.head_dim});
    s.attn = backend_.alloc(dtype::f32, {n, c.num_heads * c.head_dim});
    s.proj = backend_.alloc(dtype::f32, {n, c.hidden_size});
    s.gate_up = backend_.alloc(dtype::f32, {n, 2 * c.intermediate_size});
    s.ffn = backend_.alloc(dtype::f32, {n, c.intermediate_size});
    s.token_capacity = n;
  }
  if (num_rows > s.row_capacity) {
    s.logit_rows = backend_.alloc(dtype::i32, {num_rows});
    s.row_hidden = backend_.alloc(dtype::f32, {num_rows, c.hidden_size});
    s.logits = backend_.alloc(dtype::f32, {num_rows, c.vocab_size});
    if (plan_.tp_size > 1) s.local_logits = backend_.alloc(dtype::f32, {num_rows, plan_.lm_head_rows.count()});
    s.row_capacity = num_rows;
  }
  if (num_seqs > s.seq_capacity) {
    s.query_start = backend_.alloc(dtype::i32, {num_seqs + 1});
    s.context_len = backend_.alloc(dtype::i32, {num_seqs});
    s.seq_capacity = num_seqs;
  }
  if (table > s.table_capacity) {
    s.block_table = backend_.alloc(dtype::i32, {table});
    s.table_capacity = table;
  }
  return moves;
}

glm4_model::~glm4_model() { backend_.forget_recordings(); }

std::uint64_t glm4_model::next_identity() {
  static std::atomic<std::uint64_t> models_built{0};
  return ++models_built;
}

std::uint64_t activation_bytes(const model_config& config, const shard_plan& plan, std::int64_t max_tokens,
                               std::int64_t max_seqs) {
  // As glm4_model::reserve allocates, with at least one of everything.
  const model_config c = local_config(config, plan);
  const auto tokens = static_cast<std::uint64_t>(std::max<std::int64_t>(1, max_tokens));
  const auto seqs = static_cast<std::uint64_t>(std::max<std::int64_t>(1, max_seqs));
  const auto floats_per_token = static_cast<std::uint64_t>(3 * c.hidden_size + 2 * c.num_heads * c.head_dim +
                                                           2 * c.num_kv_heads * c.head_dim + 3 * c.intermediate_size);
  const std::uint64_t ints_per_token = 3;  // ids, positions, slots
  const auto floats_per_row = static_cast<std::uint64_t>(c.hidden_size + c.vocab_size +
                                                         (plan.tp_size > 1 ? plan.lm_head_rows.count() : 0));
  const std::uint64_t ints_per_seq = 3;  // logit_rows, context_len, query_start (plus one)
  return 4 * (tokens * (floats_per_token + ints_per_token) + seqs * (floats_per_row + ints_per_seq) + 1);
}

std::uint64_t glm4_model::scratch_bytes() const {
  const scratch& s = scratch_;
  std::uint64_t total = 0;
  for (const tensor* t : {&s.ids, &s.positions, &s.slots, &s.query_start, &s.context_len, &s.block_table, &s.logit_rows,
                          &s.hidden, &s.normed, &s.q, &s.k, &s.v, &s.attn, &s.proj, &s.gate_up, &s.ffn, &s.row_hidden,
                          &s.logits, &s.local_logits})
    total += t->empty() ? 0 : t->nbytes();
  return total;
}

void glm4_model::join_tensor_parallel(std::shared_ptr<kernels::comm::communicator> group) {
  if (tensor_parallel_) throw std::logic_error("glm4_model: this rank has joined its tensor-parallel group already");
  check_group(plan_, group.get(), backend_);
  tensor_parallel_ = std::move(group);
}

const tensor& glm4_model::forward(const step_batch& batch, kv_cache& cache, std::span<const float> hidden_in) {
  if (plan_.tp_size > 1 && !tensor_parallel_)
    throw std::logic_error("glm4_model: tensor-parallel rank " + std::to_string(plan_.tp_rank) + " of " +
                           std::to_string(plan_.tp_size) + " has not joined its group");
  validate(batch);
  if (batch.block_size != cache.block_size())
    throw std::invalid_argument("glm4_model: batch block size " + std::to_string(batch.block_size) + " is not the cache's " +
                                std::to_string(cache.block_size()));
  if (cache.num_layers() != config_.num_layers) throw std::invalid_argument("glm4_model: the cache has the wrong layer count");
  const std::int64_t num_tokens = batch.num_tokens(), num_rows = static_cast<std::int64_t>(batch.logit_rows.size());
  if (plan_.has_embedding != hidden_in.empty() && num_tokens > 0)
    throw std::invalid_argument(plan_.has_embedding ? "glm4_model: the first stage embeds its tokens and takes no hidden states"
                                                    : "glm4_model: a later pipeline stage needs the previous stage's hidden states");
  if (!hidden_in.empty() && static_cast<std::int64_t>(hidden_in.size()) != num_tokens * config_.hidden_size)
    throw std::invalid_argument("glm4_model: hidden states of " + std::to_string(hidden_in.size()) + " values for " +
                                std::to_string(num_tokens) + " tokens of width " + std::to_string(config_.hidden_size));
  // A decode step may run padded to a recorded shape (record_decode_steps); the real rows come first.
  const std::optional<decode_shape> shape = record_decode_ ? recordable_decode_shape(batch) : std::nullopt;
  const step_batch padded = shape ? pad_decode_batch(batch, *shape) : step_batch{};
  const step_batch& run = shape ? padded : batch;
  const bool moved = reserve(run);
  if (moved || cache.identity() != recorded_cache_) {
    backend_.forget_recordings();  // recordings name the old buffers
    recorded_cache_ = cache.identity();
  }
  scratch& s = scratch_;
  logits_view_ = rows_of(s.logits, num_rows);
  hidden_view_ = rows_of(s.hidden, num_tokens);
  const tensor& result = plan_.has_lm_head ? logits_view_ : hidden_view_;
  if (num_tokens == 0) return result;

  // Every host value goes up before the ops, which a recording replays without calling them.
  const auto upload_ints = [&](const tensor& buffer, const std::vector<std::int32_t>& host) {
    tensor view = rows_of(buffer, static_cast<std::int64_t>(host.size()));
    backend_.upload(view, host.data());
    return view;
  };
  const std::int64_t run_tokens = run.num_tokens(), run_seqs = run.num_seqs();
  kernels::attention_batch attention;
  attention.query_start = upload_ints(s.query_start, run.query_start);
  attention.context_len = upload_ints(s.context_len, run.context_len);
  attention.block_table = kernels::reshape(upload_ints(s.block_table, run.block_table), {run_seqs, run.max_blocks_per_seq});
  attention.num_seqs = static_cast<std::int32_t>(run_seqs);
  attention.max_context_len = *std::max_element(run.context_len.begin(), run.context_len.end());
  attention.block_size = run.block_size;
  upload_ints(s.positions, run.positions);
  upload_ints(s.slots, run.slot_mapping);
  const tensor ids = plan_.has_embedding ? upload_ints(s.ids, run.token_ids) : tensor{};  // later stages take hidden states
  if (!plan_.has_embedding) backend_.upload(hidden_view_, hidden_in.data());

  const auto ops = [&] {
    if (plan_.has_embedding) {
      tensor run_hidden = rows_of(s.hidden, run_tokens);
      backend_.embedding(run_hidden, weights_.tok_embeddings, ids);
    }
    for (std::int64_t layer = 0; layer < config_.num_layers; ++layer) run_layer(layer, run_tokens, attention, cache);
  };
  if (shape)
    backend_.run_recorded(shape->key(identity_), ops);
  else
    ops();
  if (!plan_.has_lm_head || num_rows == 0) return result;
  return compute_logits(batch, hidden_view_);
}

const tensor& glm4_model::compute_logits(const step_batch& batch, const tensor& hidden) {
  scratch& s = scratch_;
  const auto num_rows = static_cast<std::int64_t>(batch.logit_rows.size());
  tensor rows = rows_of(s.logit_rows, num_rows);
  backend_.upload(rows, batch.logit_rows.data());
  tensor row_hidden = rows_of(s.row_hidden, num_rows);
  backend_.gather_rows(row_hidden, hidden, rows);
  backend_.rms_norm(row_hidden, row_hidden, weights_.final_norm, static_cast<float>(config_.rms_norm_eps));
  if (plan_.tp_size == 1) {
    backend_.matmul(logits_view_, row_hidden, weights_.lm_head, nullptr);
  } else {
    tensor local = rows_of(s.local_logits, num_rows);
    backend_.matmul(local, row_hidden, weights_.lm_head, nullptr);
    tensor_parallel_->gather_columns(local, plan_.tp_rank == 0 ? &logits_view_ : nullptr);
  }
  return logits_view_;
}

void glm4_model::all_reduce(tensor& partial_sums) {
  if (plan_.tp_size > 1) tensor_parallel_->all_reduce_sum(partial_sums);
}

void glm4_model::run_layer(std::int64_t layer, std::int64_t num_tokens, const kernels::attention_batch& attention,
                           kv_cache& cache) {
  const model_config& c = config_;
  const layer_weights& w = weights_.layers[static_cast<std::size_t>(layer)];
  scratch& s = scratch_;
  const auto eps = static_cast<float>(c.rms_norm_eps);
  const tensor positions = rows_of(s.positions, num_tokens), slots = rows_of(s.slots, num_tokens);
  tensor hidden = rows_of(s.hidden, num_tokens), normed = rows_of(s.normed, num_tokens), proj = rows_of(s.proj, num_tokens);
  tensor q = rows_of(s.q, num_tokens), k = rows_of(s.k, num_tokens), v = rows_of(s.v, num_tokens);
  tensor attn = rows_of(s.attn, num_tokens);

  backend_.rms_norm(normed, hidden, w.attn_norm, eps);
  backend_.matmul(q, normed, w.wq, w.bq ? &*w.bq : nullptr);
  backend_.matmul(k, normed, w.wk, w.bk ? &*w.bk : nullptr);
  backend_.matmul(v, normed, w.wv, w.bv ? &*w.bv : nullptr);
  tensor q_heads = kernels::reshape(q, {num_tokens, c.num_heads, c.head_dim});
  tensor k_heads = kernels::reshape(k, {num_tokens, c.num_kv_heads, c.head_dim});
  const tensor v_heads = kernels::reshape(v, {num_tokens, c.num_kv_heads, c.head_dim});
  const auto theta = static_cast<float>(c.rope_theta);
  backend_.rotary(q_heads, positions, c.rotary_dim, theta);
  backend_.rotary(k_heads, positions, c.rotary_dim, theta);
  backend_.store_kv(cache.keys(layer), cache.values(layer), k_heads, v_heads, slots);
  tensor attn_heads = kernels::reshape(attn, {num_tokens, c.num_heads, c.head_dim});
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  backend_.paged_attention(attn_heads, q_heads, cache.keys(layer), cache.values(layer), attention, positions, scale);
  backend_.matmul(proj, attn, w.wo, nullptr);
  all_reduce(proj);
  if (w.post_attn_norm) backend_.rms_norm(proj, proj, *w.post_attn_norm, eps);
  backend_.add_inplace(hidden, proj);

  tensor gate_up = rows_of(s.gate_up, num_tokens), ffn = rows_of(s.ffn, num_tokens);
  backend_.rms_norm(normed, hidden, w.ffn_norm, eps);
  backend_.matmul(gate_up, normed, w.w_gate_up, nullptr);
  backend_.swiglu(ffn, gate_up);
  backend_.matmul(proj, ffn, w.w_down, nullptr);
  all_reduce(proj);
  if (w.post_ffn_norm) backend_.rms_norm(proj, proj, *w.post_ffn_norm, eps);
  backend_.add_inplace(hidden, proj);
}

std::vector<float> glm4_model::forward_logits(const step_batch& batch, kv_cache& cache, std::span<const float> hidden_in) {
  if (!plan_.has_lm_head) throw std::logic_error("glm4_model: forward_logits on a stage without the LM head");
  const tensor& logits = forward(batch, cache, hidden_in);
  if (plan_.tp_rank != 0) return {};
  std::vector<float> host(static_cast<std::size_t>(logits.numel()));
  if (!host.empty()) backend_.download(logits, host.data());
  return host;
}

}  // namespace glm4::model
