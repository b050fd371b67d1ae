#include "kernels/cuda/cuda_backend.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>

#include "kernels/arch_support.hpp"
#include "kernels/attention_split.hpp"
#include "kernels/cpu/cpu_ops.hpp"
#include "kernels/cuda/add.cuh"
#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/cublas_check.hpp"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/device_query.hpp"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/gather_rows.cuh"
#include "kernels/cuda/grouped_attention.cuh"
#include "kernels/cuda/matmul.cuh"
#include "kernels/cuda/matvec.cuh"
#include "kernels/cuda/nccl_group.hpp"
#include "kernels/cuda/paged_attention.cuh"
#include "kernels/cuda/rms_norm.cuh"
#include "kernels/cuda/rotary.cuh"
#include "kernels/cuda/row_logprobs.cuh"
#include "kernels/cuda/sample_rows.cuh"
#include "kernels/cuda/store_kv.cuh"
#include "kernels/cuda/swiglu.cuh"

namespace glm4::kernels {

// Argument checks shared with the CPU backend: same exceptions, same messages.
using cpu::expect_float_type;
using cpu::expect_kv_cache;
using cpu::expect_rank;

namespace cuda {
namespace {

// Host structs of fixed layout (sampling specs, edits, logprob requests) travel as bytes in I32
// buffers: the words that hold nbytes.
std::int64_t words_for(std::size_t nbytes) { return static_cast<std::int64_t>((nbytes + 3) / 4); }

// The kernel the environment variable `name` chooses through `parse`, or `fallback` when it is unset or
// empty; any other value throws, naming the `choices`.
template <class Kernel, class Parse>
Kernel kernel_from_environment(const char* name, Kernel fallback, Parse parse, const char* choices) {
  const char* chosen = std::getenv(name);
  if (chosen == nullptr || *chosen == '\0') return fallback;
  if (const auto kernel = parse(chosen)) return *kernel;
  throw std::invalid_argument(std::string(name) + " is '" + chosen + "': use " + choices);
}

}  // namespace

cuda_backend::cuda_backend(int device) : device_(device) {
  cudaDeviceProp props{};
  CUDA_CHECK(cudaGetDeviceProperties(&props, device));
  activate();
  native_bf16_ = has_native_bf16(props.major, props.minor);
  num_sms_ = props.multiProcessorCount;
  name_ = "cuda:" + std::to_string(device) + " " + props.name + " (sm_" + std::to_string(props.major) +
          std::to_string(props.minor) + ")";
  attention_kernel_ =
      kernel_from_environment("GLM4_CUDA_ATTENTION", attention_kernel_, parse_attention_kernel, "per_head or grouped");
  matmul_kernel_ = kernel_from_environment("GLM4_CUDA_MATMUL", matmul_kernel_, parse_matmul_kernel, "cublas or matvec");
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  stream_ = stream;
  cublasHandle_t handle = nullptr;
  const cublasStatus_t status = cublasCreate(&handle);
  if (status != CUBLAS_STATUS_SUCCESS) {
    cudaStreamDestroy(stream_);
    throw_cublas_error(status, "cublasCreate", __FILE__, __LINE__);
  }
  cublas_ = handle;
  try {
    CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // cuBLAS must not allocate inside a graph capture: give it a workspace of its own up front.
    constexpr std::int64_t workspace_bytes = 32 << 20;
    cublas_workspace_ = alloc(dtype::f32, {workspace_bytes / 4});
    CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_workspace_.data, static_cast<std::size_t>(workspace_bytes)));
  } catch (...) {
    cublasDestroy(cublas_);  // the destructor does not run for a constructor that throws
    cudaStreamDestroy(stream_);
    throw;
  }
}

cuda_backend::~cuda_backend() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);
  for (const auto& recording : recordings_) cudaGraphExecDestroy(recording.second);
  cublasDestroy(cublas_);
  cudaStreamDestroy(stream_);
}

void cuda_backend::activate() const { CUDA_CHECK(cudaSetDevice(device_)); }

bool cuda_backend::capturing() const {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream_, &status));
  return status != cudaStreamCaptureStatusNone;
}

tensor cuda_backend::alloc(dtype type, std::vector<std::int64_t> shape) {
  tensor t;
  t.type = type;
  t.shape = std::move(shape);
  for (auto extent : t.shape)
    if (extent < 0) throw std::invalid_argument("alloc: negative extent in " + describe(t));
  activate();
  void* memory = nullptr;
  // cudaMalloc aligns to 256 bytes; a zero-byte tensor still gets a distinct, non-null pointer.
  if (const cudaError_t status = cudaMalloc(&memory, t.nbytes() == 0 ? 256 : t.nbytes()); status != cudaSuccess) {
    if (status != cudaErrorMemoryAllocation) throw_cuda_error(status, "cudaMalloc", __FILE__, __LINE__);
    cudaGetLastError();  // out of memory is not sticky: the backend stays usable
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    constexpr double mib = 1024.0 * 1024.0;
    throw std::runtime_error(name_ + ": out of memory allocating " + describe(t) + " (" +
                             std::to_string(static_cast<long long>(static_cast<double>(t.nbytes()) / mib)) + " MiB; " +
                             std::to_string(static_cast<long long>(static_cast<double>(free_bytes) / mib)) + " MiB free of " +
                             std::to_string(static_cast<long long>(static_cast<double>(total_bytes) / mib)) +
                             " MiB): lower gpu_memory_utilization, max_num_seqs or max_num_batched_tokens, or use more GPUs");
  }
  t.data = memory;
  // The last owner may let go on another thread, whose current device can be another GPU.
  t.owner = std::shared_ptr<void>(memory, [device = device_](void* p) {
    int current = -1;
    const bool known = cudaGetDevice(&current) == cudaSuccess;
    cudaSetDevice(device);
    cudaFree(p);
    if (known && current != device) cudaSetDevice(current);  // the thread may be mid-way through another GPU's op
  });
  return t;
}

void cuda_backend::upload(tensor& dst, const void* host_src) {
  if (dst.nbytes() == 0) return;
  activate();
  CUDA_CHECK(cudaMemcpyAsync(dst.data, host_src, dst.nbytes(), cudaMemcpyHostToDevice, stream_));
}

void cuda_backend::download(const tensor& src, void* host_dst) {
  if (src.nbytes() == 0) return;
  activate();
  CUDA_CHECK(cudaMemcpyAsync(host_dst, src.data, src.nbytes(), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void cuda_backend::copy(tensor& dst, const tensor& src) {
  cpu::expect_copy_args(dst, src);
  if (src.nbytes() == 0) return;
  activate();
  CUDA_CHECK(cudaMemcpyAsync(dst.data, src.data, src.nbytes(), cudaMemcpyDeviceToDevice, stream_));
}

tensor cuda_backend::to_device(const tensor& host) {
  if (host.type != dtype::bf16 || native_bf16_) {
    tensor device = alloc(host.type, host.shape);
    upload(device, host.data);
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host tensor may be a mapping about to close
    return device;
  }
  // Before sm_80 cuBLAS has no BF16 GEMM: keep the weights as F16 (the arithmetic is FP32 anyway),
  // or as F32 for a tensor with values past F16's range, which would turn into inf.
  if (!warned_bf16_) {
    std::cerr << "glm4: " << name_ << " has no native BF16 (needs sm_80+); BF16 weights are stored as F16, "
              << "computed in FP32\n";
    warned_bf16_ = true;
  }
  tensor staging = alloc(dtype::bf16, host.shape);
  upload(staging, host.data);
  tensor largest = alloc(dtype::i32, {1});
  launch_abs_max(static_cast<std::uint32_t*>(largest.data), staging.data, dtype::bf16, host.numel(), stream_);
  std::uint32_t largest_bits = 0;
  download(largest, &largest_bits);  // waits for the stream
  float largest_value = 0.0f;
  std::memcpy(&largest_value, &largest_bits, sizeof largest_value);
  constexpr float f16_max = 65504.0f;
  const dtype stored = largest_value > f16_max ? dtype::f32 : dtype::f16;
  if (stored == dtype::f32)
    std::cerr << "glm4: " << name_ << ": a BF16 weight " << describe(host) << " holds values up to " << largest_value
              << ", past F16's " << f16_max << ": kept in F32\n";
  tensor device = alloc(stored, host.shape);
  launch_convert(device.data, stored, staging.data, dtype::bf16, host.numel(), stream_);
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return device;
}

void cuda_backend::synchronize() {
  activate();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

tensor& cuda_backend::at_least(tensor& buffer, dtype type, std::int64_t count) {
  if (buffer.empty() || buffer.type != type || buffer.numel() < count) {
    buffer = {};  // cudaFree waits for the kernels still reading the old buffer
    buffer = alloc(type, {std::max<std::int64_t>(count, 1)});
  }
  return buffer;
}

tensor& cuda_backend::recorded_buffer(tensor& buffer, dtype type, std::int64_t count, const char* op) {
  if (!buffer.empty() && buffer.type == type && buffer.numel() >= count) return buffer;
  if (capturing())
    throw std::logic_error(std::string(op) + ": its buffer grew while a decode step was being recorded");
  forget_recordings();  // they read the old buffer
  return at_least(buffer, type, count);
}

void* cuda_backend::scratch(std::size_t bytes) {
  return recorded_buffer(scratch_, dtype::f32, static_cast<std::int64_t>((bytes + 3) / 4), "matmul").data;
}

const float* cuda_backend::inv_freq(std::int64_t rotary_dim, float theta) {
  if (inv_freq_.empty() || rotary_dim != rotary_dim_ || theta != theta_) {
    // Computed exactly as the CPU backend does, so both rotate by the same F32 angles.
    std::vector<float> host(static_cast<std::size_t>(rotary_dim / 2));
    for (std::size_t i = 0; i < host.size(); ++i) {
      const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
      host[i] = 1.0f / std::pow(theta, exponent);
    }
    if (capturing())
      throw std::logic_error("rotary: the table changed while a decode step was being recorded");
    forget_recordings();  // they read the old table
    inv_freq_ = {};       // cudaFree waits for the kernels still reading the old table
    inv_freq_ = alloc(dtype::f32, {static_cast<std::int64_t>(host.size())});
    upload(inv_freq_, host.data());  // on our stream, ahead of the kernels that read it
    rotary_dim_ = rotary_dim;
    theta_ = theta;
  }
  return inv_freq_.as<float>();
}

void cuda_backend::embedding(tensor& out, const tensor& table, const tensor& ids) {
  expect_float_type(table, "embedding table");
  if (table.rank() != 2) throw std::invalid_argument("embedding: table must be (V, H), got " + describe(table));
  expect_rank(ids, dtype::i32, 1, "embedding ids");
  expect_shape(out, dtype::f32, {ids.dim(0), table.dim(1)}, "embedding out");
  activate();
  launch_embedding(out.as<float>(), table.data, table.type, ids.as<std::int32_t>(), ids.dim(0), table.dim(0),
                   table.dim(1), stream_);
}

void cuda_backend::rms_norm(tensor& out, const tensor& x, const tensor& weight, float eps) {
  expect_rank(x, dtype::f32, 2, "rms_norm x");
  expect_float_type(weight, "rms_norm weight");
  if (weight.rank() != 1 || weight.dim(0) != x.dim(1))
    throw std::invalid_argument("rms_norm: weight " + describe(weight) + " does not match x " + describe(x));
  expect_shape(out, dtype::f32, x.shape, "rms_norm out");
  activate();
  launch_rms_norm(out.as<float>(), x.as<float>(), weight.data, weight.type, x.dim(0), x.dim(1), eps, stream_);
}

void cuda_backend::matmul(tensor& out, const tensor& x, const tensor& w, const tensor* bias) {
  expect_rank(x, dtype::f32, 2, "matmul x");
  expect_float_type(w, "matmul w");
  if (w.rank() != 2 || w.dim(1) != x.dim(1))
    throw std::invalid_argument("matmul: w " + describe(w) + " does not match x " + describe(x));
  const std::int64_t num_tokens = x.dim(0), n = w.dim(0), k = w.dim(1);
  expect_shape(out, dtype::f32, {num_tokens, n}, "matmul out");
  if (out.data == x.data && num_tokens > 0) throw std::invalid_argument("matmul: out must not alias x");
  if (bias != nullptr) {
    expect_float_type(*bias, "matmul bias");
    if (bias->rank() != 1 || bias->dim(0) != n)
      throw std::invalid_argument("matmul: bias " + describe(*bias) + " does not match w " + describe(w));
  }
  activate();
  // matvec widens BF16 itself, with integer operations any card has: no F16 copy of the weights first.
  if (uses_matvec(matmul_kernel_, num_tokens, w.type)) {
    launch_matvec(out.as<float>(), x.as<float>(), w.data, w.type, bias != nullptr ? bias->data : nullptr,
                  bias != nullptr ? bias->type : dtype::f32, num_tokens, n, k, stream_);
    return;
  }
  const void* weights = w.data;
  dtype weight_type = w.type;
  if (weight_type == dtype::bf16 && !native_bf16_) {
    // BF16 weights that did not come through to_device (which stores them as F16 here): narrow
    // them per call, slow but correct, since cuBLAS has no BF16 GEMM before sm_80.
    recorded_buffer(weight_scratch_, dtype::f16, w.numel(), "matmul");
    launch_convert(weight_scratch_.data, dtype::f16, w.data, dtype::bf16, w.numel(), stream_);
    weights = weight_scratch_.data;
    weight_type = dtype::f16;
  }
  const std::size_t scratch_bytes = matmul_scratch_bytes(num_tokens, k, weight_type);
  void* narrowed = scratch_bytes == 0 ? nullptr : scratch(scratch_bytes);
  launch_matmul(cublas_, stream_, out.as<float>(), x.as<float>(), narrowed, weights, weight_type,
                bias != nullptr ? bias->data : nullptr, bias != nullptr ? bias->type : dtype::f32, num_tokens, n, k);
}

void cuda_backend::rotary(tensor& x, const tensor& positions, std::int64_t rotary_dim, float theta) {
  expect_rank(x, dtype::f32, 3, "rotary x");
  expect_shape(positions, dtype::i32, {x.dim(0)}, "rotary positions");
  if (rotary_dim <= 0 || rotary_dim % 2 != 0 || rotary_dim > x.dim(2))
    throw std::invalid_argument("rotary: rotary_dim " + std::to_string(rotary_dim) + " must be even and in (0, " +
                                std::to_string(x.dim(2)) + "]");
  if (!(theta > 0.0f)) throw std::invalid_argument("rotary: theta must be positive");
  activate();
  launch_rotary(x.as<float>(), positions.as<std::int32_t>(), inv_freq(rotary_dim, theta), x.dim(0), x.dim(1), x.dim(2),
                rotary_dim, stream_);
}

void cuda_backend::store_kv(tensor& k_cache, tensor& v_cache, const tensor& k, const tensor& v, const tensor& slots) {
  expect_kv_cache(k_cache, v_cache);
  expect_rank(k, dtype::f32, 3, "store_kv k");
  expect_shape(v, dtype::f32, k.shape, "store_kv v");
  expect_shape(slots, dtype::i32, {k.dim(0)}, "store_kv slots");
  if (k.dim(1) != k_cache.dim(2) || k.dim(2) != k_cache.dim(3))
    throw std::invalid_argument("store_kv: k " + describe(k) + " does not match the cache " + describe(k_cache));
  activate();
  launch_store_kv(k_cache.data, v_cache.data, k_cache.type, k.as<float>(), v.as<float>(), slots.as<std::int32_t>(),
                  k.dim(0), k.dim(1) * k.dim(2), k_cache.dim(0) * k_cache.dim(1), stream_);
}

void cuda_backend::paged_attention(tensor& out, const tensor& q, const tensor& k_cache, const tensor& v_cache,
                                   const attention_batch& batch, const tensor& positions, float scale) {
  const auto fail = [](const std::string& what) { throw std::invalid_argument("paged_attention: " + what); };
  expect_kv_cache(k_cache, v_cache);
  expect_rank(q, dtype::f32, 3, "paged_attention q");
  expect_shape(out, dtype::f32, q.shape, "paged_attention out");
  const std::int64_t num_seqs = batch.num_seqs;
  expect_shape(batch.query_start, dtype::i32, {num_seqs + 1}, "paged_attention query_start");
  expect_shape(batch.context_len, dtype::i32, {num_seqs}, "paged_attention context_len");
  expect_rank(batch.block_table, dtype::i32, 2, "paged_attention block_table");
  if (batch.block_table.dim(0) != num_seqs) fail("block_table has " + describe(batch.block_table) + " rows");
  expect_shape(positions, dtype::i32, {q.dim(0)}, "paged_attention positions");
  if (k_cache.dim(3) != q.dim(2)) fail("head dim of q " + describe(q) + " and cache " + describe(k_cache) + " differ");
  if (k_cache.dim(2) == 0 || q.dim(1) % k_cache.dim(2) != 0) fail("query heads are not a multiple of KV heads");
  if (k_cache.dim(1) != batch.block_size) fail("cache block size differs from batch.block_size");
  if (out.data == q.data && q.dim(0) > 0) fail("out must not alias q");
  if (q.dim(0) > 0 && num_seqs == 0) fail("rows without sequences");

  paged_attention_args args;
  args.out = out.as<float>();
  args.q = q.as<float>();
  args.k_cache = k_cache.data;
  args.v_cache = v_cache.data;
  args.cache_type = k_cache.type;
  args.query_start = batch.query_start.as<std::int32_t>();
  args.context_len = batch.context_len.as<std::int32_t>();
  args.block_table = batch.block_table.as<std::int32_t>();
  args.positions = positions.as<std::int32_t>();
  args.num_tokens = q.dim(0);
  args.num_heads = q.dim(1);
  args.num_kv_heads = k_cache.dim(2);
  args.head_dim = q.dim(2);
  args.num_seqs = num_seqs;
  args.max_blocks_per_seq = batch.block_table.dim(1);
  args.block_size = k_cache.dim(1);
  args.num_blocks = k_cache.dim(0);
  args.scale = scale;
  activate();
  if (attention_kernel_ == attention_kernel::grouped && grouped_attention_supports(args)) {
    // Shapes only (kernels/attention_split.hpp): a recorded decode step keeps its split.
    const attention_split split = plan_attention_split(args.num_tokens, args.num_kv_heads,
                                                       args.max_blocks_per_seq * args.block_size,
                                                       grouped_attention_tile(args.head_dim), num_sms_, max_attention_splits_);
    args.splits = split.splits;
    args.keys_per_split = split.keys_per_split;
    if (const std::size_t bytes = grouped_attention_partials_bytes(args); bytes > 0)
      args.partials = recorded_buffer(attention_partials_, dtype::f32, static_cast<std::int64_t>((bytes + 3) / 4),
                                      "paged_attention")
                          .as<float>();
  }
  launch_paged_attention(args, stream_, attention_kernel_);
}

void cuda_backend::swiglu(tensor& out, const tensor& gate_up) {
  expect_rank(gate_up, dtype::f32, 2, "swiglu gate_up");
  if (gate_up.dim(1) % 2 != 0) throw std::invalid_argument("swiglu: odd width in " + describe(gate_up));
  const std::int64_t ffn = gate_up.dim(1) / 2;
  expect_shape(out, dtype::f32, {gate_up.dim(0), ffn}, "swiglu out");
  activate();
  launch_swiglu(out.as<float>(), gate_up.as<float>(), gate_up.dim(0), ffn, stream_);
}

void cuda_backend::add_inplace(tensor& x, const tensor& y) {
  expect_rank(x, dtype::f32, x.rank(), "add_inplace x");
  expect_shape(y, dtype::f32, x.shape, "add_inplace y");
  activate();
  launch_add_inplace(x.as<float>(), y.as<float>(), x.numel(), stream_);
}

void cuda_backend::gather_rows(tensor& out, const tensor& x, const tensor& rows) {
  expect_rank(x, dtype::f32, 2, "gather_rows x");
  expect_rank(rows, dtype::i32, 1, "gather_rows rows");
  expect_shape(out, dtype::f32, {rows.dim(0), x.dim(1)}, "gather_rows out");
  if (out.data == x.data && rows.dim(0) > 0) throw std::invalid_argument("gather_rows: out must not alias x");
  activate();
  launch_gather_rows(out.as<float>(), x.as<float>(), rows.as<std::int32_t>(), rows.dim(0), x.dim(0), x.dim(1), stream_);
}

void cuda_backend::sample_rows(std::span<std::int32_t> ids, const tensor& logits, std::span<const row_sampling_spec> rows,
                               std::span<const token_edit> edits) {
  cpu::expect_sampling_args(ids, logits, rows, edits);
  const std::int64_t num_rows = logits.dim(0);
  if (num_rows == 0) return;
  activate();
  tensor& specs = at_least(sample_specs_, dtype::i32, words_for(rows.size_bytes()));
  CUDA_CHECK(cudaMemcpyAsync(specs.data, rows.data(), rows.size_bytes(), cudaMemcpyHostToDevice, stream_));
  tensor& edit_buffer = at_least(sample_edits_, dtype::i32, words_for(edits.size_bytes()));
  if (!edits.empty())
    CUDA_CHECK(cudaMemcpyAsync(edit_buffer.data, edits.data(), edits.size_bytes(), cudaMemcpyHostToDevice, stream_));
  tensor& work = at_least(sample_work_, dtype::f32, logits.numel());
  tensor& device_ids = at_least(sample_ids_, dtype::i32, num_rows);
  launch_sample_rows(device_ids.as<std::int32_t>(), logits.as<float>(), work.as<float>(), num_rows, logits.dim(1),
                     static_cast<const row_sampling_spec*>(specs.data), static_cast<const token_edit*>(edit_buffer.data),
                     stream_);
  CUDA_CHECK(cudaMemcpyAsync(ids.data(), device_ids.data, ids.size_bytes(), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void cuda_backend::row_logprobs(const tensor& logits, std::span<const logprob_request> requests, std::int32_t top,
                                std::span<float> chosen, std::span<ranked_logprob> ranked) {
  cpu::expect_logprob_args(logits, requests, top, chosen, ranked);
  if (requests.empty()) return;
  activate();
  tensor& device_requests = at_least(logprob_requests_, dtype::i32, words_for(requests.size_bytes()));
  CUDA_CHECK(cudaMemcpyAsync(device_requests.data, requests.data(), requests.size_bytes(), cudaMemcpyHostToDevice,
                             stream_));
  tensor& device_chosen = at_least(logprob_chosen_, dtype::f32, static_cast<std::int64_t>(chosen.size()));
  tensor& device_ranked = at_least(logprob_ranked_, dtype::i32, std::max<std::int64_t>(1, words_for(ranked.size_bytes())));
  launch_row_logprobs(logits.as<float>(), logits.dim(1), static_cast<const logprob_request*>(device_requests.data),
                      static_cast<std::int64_t>(requests.size()), top, device_chosen.as<float>(),
                      static_cast<ranked_logprob*>(device_ranked.data), stream_);
  CUDA_CHECK(cudaMemcpyAsync(chosen.data(), device_chosen.data, chosen.size_bytes(), cudaMemcpyDeviceToHost, stream_));
  if (!ranked.empty())
    CUDA_CHECK(cudaMemcpyAsync(ranked.data(), device_ranked.data, ranked.size_bytes(), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void cuda_backend::run_recorded(std::uint64_t key, const std::function<void()>& ops) {
  if (!recording_) return ops();
  activate();
  if (const auto found = recordings_.find(key); found != recordings_.end()) {
    CUDA_CHECK(cudaGraphLaunch(found->second, stream_));
    return;
  }
  // Run once for real (whatever the ops allocate on first use, such as scratch or the rotary
  // table, is then in place), and record the same ops without running them.
  ops();
  cudaGraph_t graph = nullptr;
  bool in_ops = false;  // a failure there may have nothing to do with recording
  const auto leave_capture = [&] {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream_, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone)
      cudaStreamEndCapture(stream_, &graph);
    if (graph) cudaGraphDestroy(graph);
    graph = nullptr;
    cudaGetLastError();
  };
  try {
    CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    in_ops = true;
    ops();
    in_ops = false;
    CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    cudaGraphExec_t recording = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&recording, graph, 0);
    cudaGraphDestroy(graph);
    graph = nullptr;
    CUDA_CHECK(made);
    recordings_[key] = recording;
  } catch (const std::exception& error) {
    leave_capture();
    // The step itself ran above. If only its recording failed (the capture calls, or an op that a
    // capture refuses), run this backend's steps directly from now on rather than fail each one;
    // anything else (a peer's abort, a device fault) is the step's own failure.
    const std::string what = error.what();
    if (in_ops && what.find("cudaErrorStreamCapture") == std::string::npos &&
        what.find("being recorded") == std::string::npos)
      throw;
    recording_ = false;
    forget_recordings();
    std::cerr << "glm4: " << name_ << ": a decode step could not be recorded as a CUDA graph (" << what
              << "); this GPU runs its steps directly from now on\n";
  } catch (...) {
    leave_capture();
    throw;
  }
}

void cuda_backend::forget_recordings() {
  if (recordings_.empty()) return;
  activate();
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // no replay still reads what is about to move
  for (const auto& recording : recordings_) cudaGraphExecDestroy(recording.second);
  recordings_.clear();
}

std::vector<std::uint8_t> cuda_backend::make_group_id() { return make_nccl_group_id(); }

std::shared_ptr<comm::communicator> cuda_backend::join_group(const comm::group_ticket& ticket) {
  return join_nccl_group(*this, ticket);
}

}  // namespace cuda

std::unique_ptr<backend> make_cuda_backend(int device) {
  const cuda::gpu_inventory inventory = cuda::query_gpus();
  if (inventory.gpus.empty()) throw std::runtime_error("no CUDA GPU: " + inventory.reason_none);
  if (device < 0 || device >= static_cast<int>(inventory.gpus.size()))
    throw std::runtime_error("no CUDA device " + std::to_string(device) + " (this machine has " +
                             std::to_string(inventory.gpus.size()) + ")");
  const cuda::kernel_image image = cuda::probe_kernel_image(device);
  if (!image.loads) {
    const auto& gpu = inventory.gpus[static_cast<std::size_t>(device)];
    const arch_verdict verdict = can_run(parse_cuda_architectures(cuda::compiled_architectures()), gpu.compute_major,
                                         gpu.compute_minor, cuda::toolkit_major_version());
    throw std::runtime_error("cannot run on " + gpu.name + ": " + image.error +
                             (verdict.advice.empty() ? "" : "; " + verdict.advice));
  }
  return std::make_unique<cuda::cuda_backend>(device);
}

}  // namespace glm4::kernels
