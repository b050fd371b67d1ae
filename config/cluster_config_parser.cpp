// cluster.toml text -> cluster_config: one function per section, each refusing unknown keys.
#include <fstream>
#include <limits>
#include <sstream>

#include "config/cluster_config.hpp"
#include "config/toml_reader.hpp"

namespace glm4::config {
namespace {

constexpr std::uint64_t default_cpu_kv_cache_bytes = 4ull << 30;
constexpr double default_gpu_memory_utilization = 0.9;
constexpr std::int64_t max_u32 = std::numeric_limits<std::uint32_t>::max();

std::string range_text(const layer_range& range) { return std::to_string(range.begin) + ".." + std::to_string(range.end); }

std::uint32_t u32(const toml_reader& reader, std::string_view key, std::int64_t min, std::uint32_t fallback,
                  std::int64_t max = max_u32) {
  return static_cast<std::uint32_t>(reader.integer(key, min, max).value_or(fallback));
}

/// The table under `key` of the root, or nullptr; anything else under that key is an error.
const toml::table* section(const toml_reader& root, std::string_view key) {
  const toml::node* node = root.table().get(key);
  if (!node) return nullptr;
  if (!node->is_table())
    root.fail(key, "expected a table [" + std::string(key) + "], got " + std::string(type_description(node->type())));
  return node->as_table();
}

// [model] and its path may be left to the command line (--model); the command says so when
// neither gives a path.
model_section read_model(const toml_reader& root, const std::string& file) {
  model_section model;
  const toml::table* table = section(root, "model");
  if (!table) return model;
  const toml_reader reader(*table, "model", file, {"path", "served_name", "dtype", "kv_cache_dtype", "tokenizer"});
  const auto path = reader.string("path");
  if (path && path->empty()) reader.fail("path", "empty: give the checkpoint directory to serve");
  if (path) model.path = *path;
  std::filesystem::path name = model.path;
  if (!name.has_filename()) name = name.parent_path();
  const auto served_name = reader.string("served_name");
  if (served_name && served_name->empty()) reader.fail("served_name", "must not be empty");
  model.served_name = served_name.value_or(name.filename().string());  // empty without a path: the command's --model names it
  for (const auto& [key, field] : {std::pair{"dtype", &model.dtype}, std::pair{"kv_cache_dtype", &model.kv_cache_dtype}})
    if (auto dtype = reader.string(key)) {
      const auto parsed = parse_model_dtype(*dtype);
      if (!parsed) reader.fail(key, "unknown dtype '" + *dtype + "' " + std::string(model_dtype_choices));
      *field = *parsed;
    }
  if (auto tokenizer = reader.string("tokenizer")) model.tokenizer = *tokenizer;
  return model;
}

server_section read_server(const toml_reader& root, const std::string& file) {
  server_section server;
  const toml::table* table = section(root, "server");
  if (!table) return server;
  const toml_reader reader(*table, "server", file,
                           {"host", "port", "api_keys", "api_key_file", "max_queued_requests", "request_timeout_s"});
  server.host = reader.string("host").value_or(server.host);
  if (server.host.empty()) reader.fail("host", "must not be empty (use \"0.0.0.0\" for every interface)");
  // Port 0 asks the system for a free port (tests use it).
  server.port = static_cast<std::uint16_t>(reader.integer("port", 0, 65535).value_or(server.port));
  server.api_keys = reader.strings("api_keys").value_or(std::vector<std::string>{});
  for (const auto& key : server.api_keys)
    if (key.empty()) reader.fail("api_keys", "an API key must not be empty");
  if (auto file_name = reader.string("api_key_file")) {
    if (!server.api_keys.empty()) reader.fail("api_key_file", "give api_keys or api_key_file, not both");
    server.api_key_file = *file_name;
  }
  server.max_queued_requests = u32(reader, "max_queued_requests", 1, server.max_queued_requests);
  server.request_timeout_s = reader.number("request_timeout_s", 0.0, 1e9);
  return server;
}

scheduler_section read_scheduler(const toml_reader& root, const std::string& file) {
  scheduler_section scheduler;
  const toml::table* table = section(root, "scheduler");
  if (!table) return scheduler;
  const toml_reader reader(*table, "scheduler", file,
                           {"max_num_seqs", "max_num_batched_tokens", "max_model_len", "block_size", "enable_prefix_caching",
                            "plan_ahead"});
  scheduler.max_num_seqs = u32(reader, "max_num_seqs", 1, scheduler.max_num_seqs);
  scheduler.max_num_batched_tokens = u32(reader, "max_num_batched_tokens", 1, scheduler.max_num_batched_tokens);
  if (auto len = reader.integer("max_model_len", 1, max_u32)) scheduler.max_model_len = static_cast<std::uint32_t>(*len);
  scheduler.block_size = u32(reader, "block_size", 1, scheduler.block_size, 1024);
  if ((scheduler.block_size & (scheduler.block_size - 1)) != 0)
    reader.fail("block_size", std::to_string(scheduler.block_size) + " is not a power of two (use 8, 16 or 32)");
  scheduler.enable_prefix_caching = reader.boolean("enable_prefix_caching").value_or(scheduler.enable_prefix_caching);
  scheduler.plan_ahead = reader.boolean("plan_ahead");
  // Every running sequence adds at least one token per step.
  if (scheduler.max_num_batched_tokens < scheduler.max_num_seqs)
    reader.fail(reader.has("max_num_batched_tokens") ? "max_num_batched_tokens" : "max_num_seqs",
                "max_num_batched_tokens (" + std::to_string(scheduler.max_num_batched_tokens) +
                    ") must be at least max_num_seqs (" + std::to_string(scheduler.max_num_seqs) + ")");
  return scheduler;
}

stage_config read_stage(const toml::table& table, std::size_t index, const std::string& file) {
  const toml_reader reader(table, "stage[" + std::to_string(index) + "]", file,
                           {"devices", "layers", "node", "kv_cache_bytes", "gpu_memory_utilization", "num_threads",
                            "cuda_graphs"});
  stage_config stage;
  stage.at = reader.position();
  std::vector<source_position> device_positions;
  const auto devices = reader.strings("devices", &device_positions);
  if (!devices || devices->empty())
    reader.fail_at(reader.position(), "devices", "missing: list the stage's devices, e.g. devices = [\"cuda:0\", \"cuda:1\"]");
  stage.devices_at = reader.position("devices");
  for (std::size_t i = 0; i < devices->size(); ++i) {
    const auto device = parse_device((*devices)[i]);
    if (!device)
      reader.fail_at(device_positions[i], "devices", "unknown device '" + (*devices)[i] + "' (expected \"cuda:N\" or \"cpu:N\")");
    for (const auto& earlier : stage.devices)
      if (earlier == *device) reader.fail_at(device_positions[i], "devices", to_string(*device) + " is listed twice");
    if (!stage.devices.empty() && device->kind != stage.kind())
      reader.fail_at(device_positions[i], "devices",
                     "mixes " + std::string(kind_name(stage.kind())) + " and " + std::string(kind_name(device->kind)) +
                         " devices; the tensor-parallel ranks of a stage are of one kind (give the others a stage of their own)");
    stage.devices.push_back(*device);
  }
  if (auto layers = reader.integers("layers", 2)) {
    stage.layers = layer_range{(*layers)[0], (*layers)[1]};
    if (stage.layers->end <= stage.layers->begin)
      reader.fail("layers", "[" + std::to_string(stage.layers->begin) + ", " + std::to_string(stage.layers->end) +
                                "] is empty; write [first, end) with end > first, e.g. [0, 20]");
  }
  stage.layers_at = reader.position("layers");
  stage.node = reader.string("node").value_or("");
  stage.kv_cache_bytes = reader.byte_size("kv_cache_bytes");
  stage.gpu_memory_utilization = reader.number("gpu_memory_utilization", 0.0, 1.0);
  if (auto threads = reader.integer("num_threads", 1, 4096)) stage.num_threads = static_cast<std::uint32_t>(*threads);
  const std::optional<bool> cuda_graphs = reader.boolean("cuda_graphs");
  stage.cuda_graphs = cuda_graphs.value_or(false);
  if (stage.kind() == device_kind::cpu) {
    if (cuda_graphs) reader.fail("cuda_graphs", "applies to GPU stages only");
    if (stage.gpu_memory_utilization)
      reader.fail("gpu_memory_utilization", "applies to GPU stages; a CPU stage takes kv_cache_bytes");
    if (!stage.kv_cache_bytes) stage.kv_cache_bytes = default_cpu_kv_cache_bytes;
  } else {
    if (stage.num_threads) reader.fail("num_threads", "applies to CPU stages only");
    if (stage.kv_cache_bytes && stage.gpu_memory_utilization)
      reader.fail("gpu_memory_utilization", "give kv_cache_bytes or gpu_memory_utilization, not both");
    if (!stage.kv_cache_bytes && !stage.gpu_memory_utilization) stage.gpu_memory_utilization = default_gpu_memory_utilization;
  }
  return stage;
}

/// Stages in file order must tile the layers without overlap or gap; the end is checked
/// against the model later (resolve_for_model).
void check_stages(const std::vector<stage_config>& stages, const std::string& file) {
  auto fail = [&](std::size_t index, source_position where, const char* key, const std::string& message) {
    throw config_error(file, where, "stage[" + std::to_string(index) + "]" + (*key ? std::string(".") + key : ""), message);
  };
  for (std::size_t i = 0; i < stages.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j)
      for (const auto& device : stages[i].devices)
        for (const auto& used : stages[j].devices)
          if (device == used && stages[i].node == stages[j].node)
            fail(i, stages[i].devices_at, "devices", to_string(device) + " is already used by stage[" + std::to_string(j) + "]");
    if (stages[i].layers.has_value() != stages[0].layers.has_value())
      fail(i, stages[i].layers ? stages[i].layers_at : stages[i].at, stages[i].layers ? "layers" : "",
           "give every stage its layers, or none (then the layers are split evenly)");
  }
  if (stages.empty() || !stages[0].layers) return;
  if (stages[0].layers->begin != 0)
    fail(0, stages[0].layers_at, "layers",
         "layers " + range_text({0, stages[0].layers->begin}) + " are in no stage (the first stage starts at layer 0)");
  for (std::size_t i = 1; i < stages.size(); ++i) {
    const layer_range previous = *stages[i - 1].layers, current = *stages[i].layers;
    const std::string earlier = "stage[" + std::to_string(i - 1) + "] (" + range_text(previous) + ")";
    if (current.begin < previous.end)
      fail(i, stages[i].layers_at, "layers",
           "layers " + range_text({current.begin, std::min(current.end, previous.end)}) + " overlap " + earlier);
    if (current.begin > previous.end)
      fail(i, stages[i].layers_at, "layers",
           "layers " + range_text({previous.end, current.begin}) + " are in no stage (" + earlier +
               " ends where this one should start)");
  }
}

std::vector<stage_config> read_stages(const toml_reader& root, const std::string& file) {
  std::vector<stage_config> stages;
  const toml::node* node = root.table().get("stage");
  if (!node) return stages;
  if (!node->is_array_of_tables())
    root.fail("stage", "expected [[stage]] tables (an array of tables), got " + std::string(type_description(node->type())));
  for (const toml::node& element : *node->as_array()) stages.push_back(read_stage(*element.as_table(), stages.size(), file));
  check_stages(stages, file);
  return stages;
}

cluster_section read_cluster(const toml_reader& root, const std::string& file) {
  cluster_section cluster;
  const toml::table* table = section(root, "cluster");
  if (!table) return cluster;
  const toml_reader reader(*table, "cluster", file, {"listen", "join_token", "join_token_file", "tls_cert", "tls_key", "tls_ca"});
  cluster.listen = reader.string("listen").value_or("");
  if (cluster.listen.empty())
    reader.fail_at(reader.position(), "listen", "missing: the address nodes join, e.g. listen = \"0.0.0.0:7000\"");
  const auto colon = cluster.listen.rfind(':');
  const std::string port = colon == std::string::npos ? "" : cluster.listen.substr(colon + 1);
  const bool port_ok = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
  if (colon == 0 || !port_ok || std::stoi(port) > 65535)
    reader.fail("listen", "'" + cluster.listen + "' is not HOST:PORT (e.g. \"0.0.0.0:7000\")");
  cluster.join_token = reader.string("join_token");
  if (auto token_file = reader.string("join_token_file")) {
    if (cluster.join_token) reader.fail("join_token_file", "give join_token or join_token_file, not both");
    cluster.join_token_file = *token_file;
  }
  if (cluster.join_token && cluster.join_token->empty()) reader.fail("join_token", "must not be empty");
  // Nodes receive the model layout and run steps: never accept one that proved nothing.
  if (!cluster.join_token && !cluster.join_token_file)
    reader.fail_at(reader.position(), "join_token", "missing: a node must present a join_token (or set join_token_file)");
  if (auto cert = reader.string("tls_cert")) cluster.tls_cert = *cert;
  if (auto key = reader.string("tls_key")) cluster.tls_key = *key;
  if (auto ca = reader.string("tls_ca")) cluster.tls_ca = *ca;
  if (cluster.tls_cert.has_value() != cluster.tls_key.has_value())
    reader.fail(cluster.tls_cert ? "tls_cert" : "tls_key", "tls_cert and tls_key go together");
  if (cluster.tls_ca && !cluster.tls_cert) reader.fail("tls_ca", "needs tls_cert and tls_key as well");
  return cluster;
}

}  // namespace

std::optional<model_dtype> parse_model_dtype(std::string_view name) {
  if (name == "auto") return model_dtype::auto_;
  if (name == "bfloat16" || name == "bf16") return model_dtype::bf16;
  if (name == "float16" || name == "f16" || name == "half") return model_dtype::f16;
  if (name == "float32" || name == "f32" || name == "float") return model_dtype::f32;
  return std::nullopt;
}

std::string_view dtype_name(model_dtype dtype) {
  switch (dtype) {
    case model_dtype::auto_: return "auto";
    case model_dtype::bf16: return "bfloat16";
    case model_dtype::f16: return "float16";
    case model_dtype::f32: return "float32";
  }
  return "?";
}

cluster_config parse_cluster_config(std::string_view text, const std::string& file_label) {
  toml::table root_table;
  try {
    root_table = toml::parse(text, file_label);
  } catch (const toml::parse_error& error) {
    throw config_error(file_label, position_of(error.source()), "", std::string(error.description()));
  }
  const toml_reader root(root_table, "", file_label, {"model", "server", "scheduler", "stage", "cluster"});
  cluster_config config;
  config.file = file_label;
  config.model = read_model(root, file_label);
  config.server = read_server(root, file_label);
  config.scheduler = read_scheduler(root, file_label);
  config.stages = read_stages(root, file_label);
  config.cluster = read_cluster(root, file_label);
  for (std::size_t i = 0; i < config.stages.size(); ++i)
    if (!config.stages[i].node.empty() && !config.cluster.enabled())
      throw config_error(file_label, config.stages[i].at, "stage[" + std::to_string(i) + "].node",
                         "names the remote node '" + config.stages[i].node + "' but [cluster] listen is not set");
  return config;
}

cluster_config load_cluster_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(path.string(), {}, "", "cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_cluster_config(text.str(), path.string());
}

}  // namespace glm4::config
