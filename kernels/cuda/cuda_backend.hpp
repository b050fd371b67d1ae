// The CUDA backend: one device, one stream, one cuBLAS handle. This header includes no CUDA
// header, so model/ and tools/ code can name it behind #ifdef GLM4_HAVE_CUDA.
//
// Ops are asynchronous on the backend's stream; download() and synchronize() wait for them.
// Shapes are checked on the host (std::invalid_argument, as on the CPU); index values that live
// on the device (ids, slots, block tables) cannot be checked without a sync, so the kernels guard
// their reads instead (see each launcher) and the model validates batches on the host first.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/cuda/attention_kernel.hpp"
#include "kernels/cuda/matmul_kernel.hpp"

struct CUstream_st;    // cudaStream_t
struct cublasContext;  // cublasHandle_t
struct CUgraphExec_st; // cudaGraphExec_t

namespace glm4::kernels {

/// The CUDA backend on `device`. Throws std::runtime_error when the device cannot be used (no
/// driver, no such device, no kernel image for its architecture, with the rebuild advice).
std::unique_ptr<backend> make_cuda_backend(int device = 0);

namespace cuda {

class cuda_backend final : public backend {
 public:
  explicit cuda_backend(int device);
  ~cuda_backend() override;
  cuda_backend(const cuda_backend&) = delete;
  cuda_backend& operator=(const cuda_backend&) = delete;

  device_kind kind() const override { return device_kind::cuda; }
  std::string name() const override { return name_; }
  /// False before sm_80: BF16 weights are then stored as F16 by to_device (FP32 compute either way).
  bool native_bf16() const { return native_bf16_; }
  /// Treats BF16 as a pre-sm_80 GPU does (F16 storage), so tests take that path on any GPU.
  void store_bf16_as_f16() { native_bf16_ = false; }
  int device() const { return device_; }
  /// The stream every op of this backend runs on (cudaStream_t); collectives join it.
  CUstream_st* stream() const { return stream_; }
  /// Makes this backend's GPU the calling thread's current device.
  void make_current() const { activate(); }

  tensor alloc(dtype type, std::vector<std::int64_t> shape) override;
  /// Asynchronous on the stream; host_src may be reused on return (pageable memory is staged).
  void upload(tensor& dst, const void* host_src) override;
  void download(const tensor& src, void* host_dst) override;
  void copy(tensor& dst, const tensor& src) override;
  tensor to_device(const tensor& host) override;
  void synchronize() override;

  void embedding(tensor& out, const tensor& table, const tensor& ids) override;
  void rms_norm(tensor& out, const tensor& x, const tensor& weight, float eps) override;
  void matmul(tensor& out, const tensor& x, const tensor& w, const tensor* bias) override;
  void rotary(tensor& x, const tensor& positions, std::int64_t rotary_dim, float theta) override;
  void store_kv(tensor& k_cache, tensor& v_cache, const tensor& k, const tensor& v, const tensor& slots) override;
  void paged_attention(tensor& out, const tensor& q, const tensor& k_cache, const tensor& v_cache,
                       const attention_batch& batch, const tensor& positions, float scale) override;
  void swiglu(tensor& out, const tensor& gate_up) override;
  void add_inplace(tensor& x, const tensor& y) override;
  void gather_rows(tensor& out, const tensor& x, const tensor& rows) override;
  void sample_rows(std::span<std::int32_t> ids, const tensor& logits, std::span<const row_sampling_spec> rows,
                   std::span<const token_edit> edits) override;
  void row_logprobs(const tensor& logits, std::span<const logprob_request> requests, std::int32_t top,
                    std::span<float> chosen, std::span<ranked_logprob> ranked) override;
  /// CUDA graphs: the first call under a key runs `ops` and captures them, later ones launch the graph.
  void run_recorded(std::uint64_t key, const std::function<void()>& ops) override;
  void forget_recordings() override;
  std::size_t num_recordings() const { return recordings_.size(); }
  /// Off: run_recorded runs the ops directly, as other backends do (tests tell graphs from padding).
  void set_recording(bool on) { recording_ = on; }
  /// The paged attention kernel (attention_kernel.hpp); from $GLM4_CUDA_ATTENTION (per_head or
  /// grouped) at construction, grouped when unset.
  void set_attention_kernel(attention_kernel kernel) { attention_kernel_ = kernel; }
  /// The kernel small batches are multiplied by (matmul_kernel.hpp); from $GLM4_CUDA_MATMUL (cublas or
  /// matvec) at construction, cublas when unset.
  void set_matmul_kernel(matmul_kernel kernel) { matmul_kernel_ = kernel; }
  /// The most pieces the grouped kernel may cut a context into (kernels/attention_split.hpp); 1: none.
  void set_max_attention_splits(int splits) { max_attention_splits_ = splits < 1 ? 1 : splits; }

  /// NCCL (kernels/cuda/nccl_group.hpp); throws in a build without NCCL.
  std::vector<std::uint8_t> make_group_id() override;
  std::shared_ptr<comm::communicator> join_group(const comm::group_ticket& ticket) override;

 private:
  void activate() const;
  /// Whether run_recorded is recording this stream's ops now (they are then not run).
  bool capturing() const;
  void* scratch(std::size_t bytes);
  /// `buffer`, reallocated unless it already holds count elements of `type`.
  tensor& at_least(tensor& buffer, dtype type, std::int64_t count);
  /// at_least for a buffer that recorded steps read: a move drops the recordings, and is refused
  /// (std::logic_error naming `op`) while a step is being recorded.
  tensor& recorded_buffer(tensor& buffer, dtype type, std::int64_t count, const char* op);
  const float* inv_freq(std::int64_t rotary_dim, float theta);

  int device_ = 0;
  std::string name_;
  bool native_bf16_ = false;
  bool warned_bf16_ = false;
  CUstream_st* stream_ = nullptr;
  cublasContext* cublas_ = nullptr;
  tensor scratch_;         // narrowed activations for F16/BF16 GEMMs, grown on demand
  tensor weight_scratch_;  // F16 copy of BF16 weights that bypassed to_device on pre-sm_80 GPUs
  std::int64_t rotary_dim_ = 0;
  float theta_ = 0.0f;
  tensor inv_freq_;  // F32 (rotary_dim_ / 2) on the device
  tensor sample_specs_, sample_edits_, sample_ids_;  // sample_rows' inputs and outputs, grown on demand
  tensor sample_work_;                                // F32 (R, V): the rows as they are filtered
  tensor logprob_requests_, logprob_chosen_, logprob_ranked_;  // row_logprobs' inputs and outputs
  tensor cublas_workspace_;                           // fixed, so captured GEMMs allocate nothing
  std::map<std::uint64_t, CUgraphExec_st*> recordings_;
  bool recording_ = true;
  attention_kernel attention_kernel_ = attention_kernel::grouped;
  matmul_kernel matmul_kernel_ = matmul_kernel::cublas;
  int num_sms_ = 1;
  int max_attention_splits_ = 64;
  tensor attention_partials_;  // the grouped kernel's per-piece softmax states, grown on demand
};

}  // namespace cuda
}  // namespace glm4::kernels
