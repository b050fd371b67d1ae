#include "tests/kernels/replaying_backend.hpp"

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace glm4::test {
namespace {

using kernels::attention_batch;
using kernels::dtype;
using kernels::tensor;

// One op as a recording holds it: the call with its arguments bound, and the buffers it touches.
struct recorded_op {
  std::string name;
  std::vector<std::weak_ptr<void>> buffers;
  std::function<void()> call;
};

class cpu_replaying_backend final : public replaying_backend {
 public:
  explicit cpu_replaying_backend(int num_threads) : cpu_(kernels::make_cpu_backend(num_threads)) {}

  kernels::device_kind kind() const override { return cpu_->kind(); }
  std::string name() const override { return "replaying " + cpu_->name(); }
  std::size_t num_recordings() const override { return recordings_.size(); }
  std::size_t num_replays() const override { return replays_; }

  tensor alloc(dtype type, std::vector<std::int64_t> shape) override {
    refuse_while_recording("alloc");
    return cpu_->alloc(type, std::move(shape));
  }
  void upload(tensor& dst, const void* host_src) override {
    refuse_while_recording("upload");
    cpu_->upload(dst, host_src);
  }
  void download(const tensor& src, void* host_dst) override {
    refuse_while_recording("download");
    cpu_->download(src, host_dst);
  }
  void copy(tensor& dst, const tensor& src) override {
    refuse_while_recording("copy");
    cpu_->copy(dst, src);
  }
  tensor to_device(const tensor& host) override {
    refuse_while_recording("to_device");
    return cpu_->to_device(host);
  }
  void synchronize() override {
    refuse_while_recording("synchronize");
    cpu_->synchronize();
  }

  void embedding(tensor& out, const tensor& table, const tensor& ids) override {
    if (!recording_) return cpu_->embedding(out, table, ids);
    recorded_op& op = record("embedding");
    op.call = [this, out = keep(op, out), table = keep(op, table), ids = keep(op, ids)]() mutable {
      cpu_->embedding(out, table, ids);
    };
  }
  void rms_norm(tensor& out, const tensor& x, const tensor& weight, float eps) override {
    if (!recording_) return cpu_->rms_norm(out, x, weight, eps);
    recorded_op& op = record("rms_norm");
    op.call = [this, out = keep(op, out), x = keep(op, x), weight = keep(op, weight), eps]() mutable {
      cpu_->rms_norm(out, x, weight, eps);
    };
  }
  void matmul(tensor& out, const tensor& x, const tensor& w, const tensor* bias) override {
    if (!recording_) return cpu_->matmul(out, x, w, bias);
    recorded_op& op = record("matmul");
    std::optional<tensor> kept_bias;
    if (bias != nullptr) kept_bias = keep(op, *bias);
    op.call = [this, out = keep(op, out), x = keep(op, x), w = keep(op, w), bias = std::move(kept_bias)]() mutable {
      cpu_->matmul(out, x, w, bias ? &*bias : nullptr);
    };
  }
  void rotary(tensor& x, const tensor& positions, std::int64_t rotary_dim, float theta) override {
    if (!recording_) return cpu_->rotary(x, positions, rotary_dim, theta);
    recorded_op& op = record("rotary");
    op.call = [this, x = keep(op, x), positions = keep(op, positions), rotary_dim, theta]() mutable {
      cpu_->rotary(x, positions, rotary_dim, theta);
    };
  }
  void store_kv(tensor& k_cache, tensor& v_cache, const tensor& k, const tensor& v, const tensor& slots) override {
    if (!recording_) return cpu_->store_kv(k_cache, v_cache, k, v, slots);
    recorded_op& op = record("store_kv");
    op.call = [this, k_cache = keep(op, k_cache), v_cache = keep(op, v_cache), k = keep(op, k), v = keep(op, v),
               slots = keep(op, slots)]() mutable { cpu_->store_kv(k_cache, v_cache, k, v, slots); };
  }
  void paged_attention(tensor& out, const tensor& q, const tensor& k_cache, const tensor& v_cache,
                       const attention_batch& batch, const tensor& positions, float scale) override {
    if (!recording_) return cpu_->paged_attention(out, q, k_cache, v_cache, batch, positions, scale);
    recorded_op& op = record("paged_attention");
    attention_batch kept_batch = batch;
    kept_batch.query_start = keep(op, batch.query_start);
    kept_batch.context_len = keep(op, batch.context_len);
    kept_batch.block_table = keep(op, batch.block_table);
    op.call = [this, out = keep(op, out), q = keep(op, q), k_cache = keep(op, k_cache), v_cache = keep(op, v_cache),
               batch = std::move(kept_batch), positions = keep(op, positions), scale]() mutable {
      cpu_->paged_attention(out, q, k_cache, v_cache, batch, positions, scale);
    };
  }
  void swiglu(tensor& out, const tensor& gate_up) override {
    if (!recording_) return cpu_->swiglu(out, gate_up);
    recorded_op& op = record("swiglu");
    op.call = [this, out = keep(op, out), gate_up = keep(op, gate_up)]() mutable { cpu_->swiglu(out, gate_up); };
  }
  void add_inplace(tensor& x, const tensor& y) override {
    if (!recording_) return cpu_->add_inplace(x, y);
    recorded_op& op = record("add_inplace");
    op.call = [this, x = keep(op, x), y = keep(op, y)]() mutable { cpu_->add_inplace(x, y); };
  }
  void gather_rows(tensor& out, const tensor& x, const tensor& rows) override {
    if (!recording_) return cpu_->gather_rows(out, x, rows);
    recorded_op& op = record("gather_rows");
    op.call = [this, out = keep(op, out), x = keep(op, x), rows = keep(op, rows)]() mutable {
      cpu_->gather_rows(out, x, rows);
    };
  }
  void sample_rows(std::span<std::int32_t> ids, const tensor& logits, std::span<const kernels::row_sampling_spec> rows,
                   std::span<const kernels::token_edit> edits) override {
    refuse_while_recording("sample_rows");  // it hands ids back to the host
    cpu_->sample_rows(ids, logits, rows, edits);
  }
  void row_logprobs(const tensor& logits, std::span<const kernels::logprob_request> requests, std::int32_t top,
                    std::span<float> chosen, std::span<kernels::ranked_logprob> ranked) override {
    refuse_while_recording("row_logprobs");  // it hands logprobs back to the host
    cpu_->row_logprobs(logits, requests, top, chosen, ranked);
  }

  void run_recorded(std::uint64_t key, const std::function<void()>& ops) override {
    refuse_while_recording("run_recorded");
    if (const auto found = recordings_.find(key); found != recordings_.end()) {
      replay(found->second);
      return;
    }
    ops();  // for real, as the CUDA backend does before it captures
    recording_ = true;
    recording_ops_.clear();
    try {
      ops();
    } catch (...) {
      recording_ = false;
      recording_ops_.clear();
      throw;
    }
    recording_ = false;
    recordings_[key] = std::move(recording_ops_);
    recording_ops_.clear();
  }
  void forget_recordings() override {
    refuse_while_recording("forget_recordings");
    recordings_.clear();
  }

  std::vector<std::uint8_t> make_group_id() override {
    refuse_while_recording("make_group_id");
    return cpu_->make_group_id();
  }
  std::shared_ptr<kernels::comm::communicator> join_group(const kernels::comm::group_ticket& ticket) override {
    refuse_while_recording("join_group");
    return cpu_->join_group(ticket);
  }

 private:
  void refuse_while_recording(const char* what) const {
    if (recording_)
      throw std::logic_error(std::string("replaying_backend: ") + what +
                             " while recording a step (a CUDA stream capture fails there)");
  }

  recorded_op& record(const char* name) {
    recording_ops_.push_back({name, {}, {}});
    return recording_ops_.back();
  }

  // The tensor as a recording sees it: the same memory, not kept alive, watched instead.
  static tensor keep(recorded_op& op, const tensor& t) {
    tensor borrowed = t;
    if (t.owner) op.buffers.emplace_back(t.owner);
    borrowed.owner.reset();
    return borrowed;
  }

  void replay(std::vector<recorded_op>& ops) {
    for (const recorded_op& op : ops)
      for (const auto& buffer : op.buffers)
        if (buffer.expired())
          throw std::logic_error("replaying_backend: a replay of " + op.name +
                                 " would touch a buffer freed since it was recorded (forget_recordings was not called)");
    for (recorded_op& op : ops) op.call();
    ++replays_;
  }

  std::unique_ptr<kernels::backend> cpu_;
  std::map<std::uint64_t, std::vector<recorded_op>> recordings_;
  std::vector<recorded_op> recording_ops_;
  bool recording_ = false;
  std::size_t replays_ = 0;
};

}  // namespace

std::unique_ptr<replaying_backend> make_replaying_backend(int num_threads) {
  return std::make_unique<cpu_replaying_backend>(num_threads);
}

}  // namespace glm4::test
