// The CPU backend: host memory, zero-copy to_device, and dispatch to the ops in kernels/cpu.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <thread>

#include "kernels/backend.hpp"
#include "kernels/comm/communicator.hpp"
#include "kernels/cpu/cpu_ops.hpp"

namespace glm4::kernels {
namespace {

// 64-byte alignment keeps vector loads on one cache line.
constexpr std::size_t alignment = 64;

class cpu_backend final : public backend {
 public:
  explicit cpu_backend(int num_threads) : num_threads_(num_threads) {}

  device_kind kind() const override { return device_kind::cpu; }
  std::string name() const override {
    return "cpu (" + std::to_string(num_threads_) + (num_threads_ == 1 ? " thread)" : " threads)");
  }

  tensor alloc(dtype type, std::vector<std::int64_t> shape) override {
    tensor t;
    t.type = type;
    t.shape = std::move(shape);
    for (auto extent : t.shape)
      if (extent < 0) throw std::invalid_argument("alloc: negative extent in " + describe(t));
    const std::size_t nbytes = (t.nbytes() + alignment - 1) / alignment * alignment;
    void* memory = std::aligned_alloc(alignment, nbytes == 0 ? alignment : nbytes);
    if (memory == nullptr) throw std::bad_alloc();
    t.data = memory;
    t.owner = std::shared_ptr<void>(memory, [](void* p) { std::free(p); });
    return t;
  }
  void upload(tensor& dst, const void* host_src) override { std::memcpy(dst.data, host_src, dst.nbytes()); }
  void download(const tensor& src, void* host_dst) override { std::memcpy(host_dst, src.data, src.nbytes()); }
  void copy(tensor& dst, const tensor& src) override {
    cpu::expect_copy_args(dst, src);
    if (src.nbytes() > 0) std::memcpy(dst.data, src.data, src.nbytes());
  }
  tensor to_device(const tensor& host) override { return host; }

  void embedding(tensor& out, const tensor& table, const tensor& ids) override {
    cpu::embedding(out, table, ids, num_threads_);
  }
  void rms_norm(tensor& out, const tensor& x, const tensor& weight, float eps) override {
    cpu::rms_norm(out, x, weight, eps, num_threads_);
  }
  void matmul(tensor& out, const tensor& x, const tensor& w, const tensor* bias) override {
    cpu::matmul(out, x, w, bias, num_threads_);
  }
  void rotary(tensor& x, const tensor& positions, std::int64_t rotary_dim, float theta) override {
    cpu::rotary(x, positions, rotary_dim, theta, num_threads_);
  }
  void store_kv(tensor& k_cache, tensor& v_cache, const tensor& k, const tensor& v, const tensor& slots) override {
    cpu::store_kv(k_cache, v_cache, k, v, slots, num_threads_);
  }
  void paged_attention(tensor& out, const tensor& q, const tensor& k_cache, const tensor& v_cache,
                       const attention_batch& batch, const tensor& positions, float scale) override {
    cpu::paged_attention(out, q, k_cache, v_cache, batch, positions, scale, num_threads_);
  }
  void swiglu(tensor& out, const tensor& gate_up) override { cpu::swiglu(out, gate_up, num_threads_); }
  void add_inplace(tensor& x, const tensor& y) override { cpu::add_inplace(x, y, num_threads_); }
  void gather_rows(tensor& out, const tensor& x, const tensor& rows) override {
    cpu::gather_rows(out, x, rows, num_threads_);
  }
  void sample_rows(std::span<std::int32_t> ids, const tensor& logits, std::span<const row_sampling_spec> rows,
                   std::span<const token_edit> edits) override {
    cpu::sample_rows(ids, logits, rows, edits, num_threads_);
  }
  void row_logprobs(const tensor& logits, std::span<const logprob_request> requests, std::int32_t top,
                    std::span<float> chosen, std::span<ranked_logprob> ranked) override {
    cpu::row_logprobs(logits, requests, top, chosen, ranked, num_threads_);
  }

  std::vector<std::uint8_t> make_group_id() override { return comm::make_shared_memory_group_id(); }
  std::shared_ptr<comm::communicator> join_group(const comm::group_ticket& ticket) override {
    return comm::join_shared_memory_group(ticket);
  }

 private:
  int num_threads_;
};

}  // namespace

std::unique_ptr<backend> make_cpu_backend(int num_threads) {
  if (num_threads < 0) throw std::invalid_argument("make_cpu_backend: negative thread count");
  if (num_threads == 0) num_threads = omp_get_num_procs();
  if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<cpu_backend>(num_threads);
}

namespace cpu {

void expect_float_type(const tensor& t, const char* what) {
  if (t.type != dtype::f32 && t.type != dtype::f16 && t.type != dtype::bf16)
    throw std::invalid_argument(std::string(what) + ": expected F32, F16 or BF16, got " + describe(t));
}

void expect_copy_args(const tensor& dst, const tensor& src) {
  if (dst.type != src.type || dst.numel() != src.numel())
    throw std::invalid_argument("copy: " + describe(src) + " into " + describe(dst) + " (one type and element count)");
  const auto* d = static_cast<const std::byte*>(dst.data);
  const auto* s = static_cast<const std::byte*>(src.data);
  if (src.nbytes() > 0 && d < s + src.nbytes() && s < d + dst.nbytes())
    throw std::invalid_argument("copy: " + describe(src) + " and " + describe(dst) + " overlap");
}

void expect_kv_cache(const tensor& k_cache, const tensor& v_cache) {
  expect_float_type(k_cache, "k_cache");
  if (k_cache.rank() != 4) throw std::invalid_argument("k_cache: expected rank 4, got " + describe(k_cache));
  expect_shape(v_cache, k_cache.type, k_cache.shape, "v_cache");
}

void expect_rank(const tensor& t, dtype type, int rank, const char* what) {
  if (t.type != type || t.rank() != rank)
    throw std::invalid_argument(std::string(what) + ": expected " + std::string(dtype_name(type)) + " of rank " +
                                std::to_string(rank) + ", got " + describe(t));
}

}  // namespace cpu
}  // namespace glm4::kernels
