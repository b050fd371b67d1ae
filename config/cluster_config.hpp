// cluster.toml: what to serve, how the server and scheduler behave, and where each layer runs.
//
//   [model]      path, served_name, dtype, kv_cache_dtype, tokenizer
//   [server]     host, port, api_keys | api_key_file, max_queued_requests, request_timeout_s
//   [scheduler]  max_num_seqs, max_num_batched_tokens, max_model_len, block_size, enable_prefix_caching,
//                plan_ahead
//   [[stage]]    devices, layers, node, kv_cache_bytes | gpu_memory_utilization, num_threads, cuda_graphs
//   [cluster]    listen, join_token | join_token_file, tls_cert, tls_key, tls_ca
//
// Pipeline stages run in file order; the devices of one stage are its tensor-parallel ranks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"
#include "config/device_spec.hpp"

namespace glm4::config {

/// The weight/activation storage type asked for; `auto_` keeps the checkpoint's own.
enum class model_dtype { auto_, bf16, f16, f32 };

std::string_view dtype_name(model_dtype dtype);
/// "auto", "bfloat16"/"bf16", "float16"/"f16"/"half", "float32"/"f32"/"float" (vLLM's names and
/// short ones); nullopt for anything else.
std::optional<model_dtype> parse_model_dtype(std::string_view name);
/// What error messages list after a name parse_model_dtype refuses.
inline constexpr std::string_view model_dtype_choices = "(expected auto, bfloat16, float16 or float32)";

struct model_section {
  std::filesystem::path path;               // a checkpoint directory (config.json, *.safetensors); empty: --model gives it
  std::string served_name;                  // default: the directory's name
  model_dtype dtype = model_dtype::auto_;
  /// The KV cache's element type; auto_: F32 on CPUs, the weights' storage type on GPUs
  /// (model::default_kv_cache_dtype).
  model_dtype kv_cache_dtype = model_dtype::auto_;
  std::optional<std::filesystem::path> tokenizer;  // default: the checkpoint directory
};

struct server_section {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  std::vector<std::string> api_keys;        // empty (and no api_key_file) means no authentication
  std::optional<std::filesystem::path> api_key_file;  // one key per line
  std::uint32_t max_queued_requests = 256;  // beyond this a request gets 429 with Retry-After
  std::optional<double> request_timeout_s;  // none or 0: never; else a generation still running then ends in error
};

struct scheduler_section {
  std::uint32_t max_num_seqs = 256;
  std::uint32_t max_num_batched_tokens = 8192;
  std::optional<std::uint32_t> max_model_len;  // default: the model's max_position_embeddings
  std::uint32_t block_size = 16;               // tokens per KV block
  bool enable_prefix_caching = true;
  /// Plan each step while the one before runs. Absent: where it pays, which is one stage on GPUs,
  /// or on CPU ranks whose threads leave a core for the scheduler (serving_stack decides).
  std::optional<bool> plan_ahead;
};

/// Half-open layer range [begin, end).
struct layer_range {
  std::int64_t begin = 0;
  std::int64_t end = 0;

  std::int64_t count() const { return end - begin; }
  bool operator==(const layer_range&) const = default;
};

/// One pipeline stage: its tensor-parallel ranks and its contiguous share of the layers.
struct stage_config {
  std::vector<device_spec> devices;      // one rank each, all of one kind
  std::optional<layer_range> layers;     // none in every stage: split evenly by resolve_for_model
  std::string node;                      // empty: the head's own devices; else a joined node's name
  /// KV cache budget per rank. CPU stages: bytes (default 4 GiB). GPU stages: bytes, or the
  /// fraction of device memory weights and KV may fill (default 0.9); exactly one is set after
  /// parsing.
  std::optional<std::uint64_t> kv_cache_bytes;
  std::optional<double> gpu_memory_utilization;
  std::optional<std::uint32_t> num_threads;  // CPU stages: threads per rank (default: cores / ranks)
  bool cuda_graphs = false;  // GPU stages: decode steps replay CUDA graphs (glm4_model::record_decode_steps)

  device_kind kind() const { return devices.front().kind; }
  std::int64_t tp_size() const { return static_cast<std::int64_t>(devices.size()); }

  // Where the keys were written, so checks that need the model can point at them.
  source_position at;          // the [[stage]] header
  source_position devices_at;
  source_position layers_at;
};

struct cluster_section {
  std::string listen;                    // "0.0.0.0:7000"; empty: no remote nodes
  std::optional<std::string> join_token;
  std::optional<std::filesystem::path> join_token_file;
  std::optional<std::filesystem::path> tls_cert, tls_key, tls_ca;

  bool enabled() const { return !listen.empty(); }
};

struct cluster_config {
  std::string file;                      // the label errors carry ("cluster.toml")
  model_section model;
  server_section server;
  scheduler_section scheduler;
  std::vector<stage_config> stages;      // empty: the caller picks one stage on its default device
  cluster_section cluster;
};

/// Parses cluster.toml text. Throws config_error (file label, line, column, key path) on a syntax
/// error, an unknown key (with a suggestion when close), a wrong type, a value out of range, an
/// unknown device, overlapping or unordered layer ranges, or inconsistent options.
cluster_config parse_cluster_config(std::string_view text, const std::string& file_label);

/// Reads and parses a file; errors carry the file's name as given.
cluster_config load_cluster_config(const std::filesystem::path& path);

/// The model's counts the layout is checked against (config/ does not depend on model/).
struct model_shape {
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;
};

/// Checks the stages against the model and returns every stage's layer range (split evenly when
/// no stage names its layers). Throws config_error when a tensor-parallel size does not fit the
/// heads, a range passes the last layer, or layers are left in no stage.
std::vector<layer_range> resolve_for_model(const cluster_config& config, const model_shape& shape);

}  // namespace glm4::config
