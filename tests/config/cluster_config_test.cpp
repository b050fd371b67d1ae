// Valid files: defaults, every section, multi-stage layouts, sizes with units, the examples.
#include <catch2/catch.hpp>

#include "config/toml_reader.hpp"
#include "tests/config/config_test_support.hpp"

namespace glm4::config {
using test::parse;

TEST_CASE("a file with only the model path gets vLLM-like defaults", "[config]") {
  const cluster_config config = parse(R"(
[model]
path = "/models/glm-4-9b-chat/"
)");
  CHECK(config.file == "cluster.toml");
  CHECK(config.model.path == "/models/glm-4-9b-chat/");
  CHECK(config.model.served_name == "glm-4-9b-chat");
  CHECK(config.model.dtype == model_dtype::auto_);
  CHECK(config.model.kv_cache_dtype == model_dtype::auto_);
  CHECK_FALSE(config.model.tokenizer);
  CHECK(config.server.host == "127.0.0.1");
  CHECK(config.server.port == 8000);
  CHECK(config.server.api_keys.empty());
  CHECK_FALSE(config.server.api_key_file);
  CHECK(config.server.max_queued_requests == 256);
  CHECK_FALSE(config.server.request_timeout_s);
  CHECK(config.scheduler.max_num_seqs == 256);
  CHECK(config.scheduler.max_num_batched_tokens == 8192);
  CHECK_FALSE(config.scheduler.max_model_len);
  CHECK(config.scheduler.block_size == 16);
  CHECK(config.scheduler.enable_prefix_caching);
  CHECK_FALSE(config.scheduler.plan_ahead);  // absent: serving_stack decides
  CHECK(config.stages.empty());
  CHECK_FALSE(config.cluster.enabled());
}

TEST_CASE("every section and key is read", "[config]") {
  const cluster_config config = parse(R"(
[model]
path = "demo-model"
served_name = "glm-4"
dtype = "bfloat16"
kv_cache_dtype = "f16"
tokenizer = "tok"

[server]
host = "0.0.0.0"
port = 0
api_keys = ["sk-a", "sk-b"]
max_queued_requests = 10
request_timeout_s = 2.5

[scheduler]
max_num_seqs = 8
max_num_batched_tokens = 512
max_model_len = 4096
block_size = 32
enable_prefix_caching = false
plan_ahead = false

[[stage]]
devices = ["cuda:0", "cuda:1"]
layers = [0, 30]
gpu_memory_utilization = 0.8
cuda_graphs = true

[[stage]]
devices = ["cuda:0"]
node = "box-2"
layers = [30, 38]
kv_cache_bytes = "6GiB"

[[stage]]
devices = ["cpu:0", "cpu:1"]
layers = [38, 40]
kv_cache_bytes = 1048576
num_threads = 8

[cluster]
listen = "0.0.0.0:7000"
join_token_file = "/etc/glm4/token"
tls_cert = "head.pem"
tls_key = "head.key"
tls_ca = "ca.pem"
)");
  CHECK(config.model.served_name == "glm-4");
  CHECK(config.model.dtype == model_dtype::bf16);
  CHECK(config.model.kv_cache_dtype == model_dtype::f16);
  CHECK(config.model.tokenizer == std::filesystem::path("tok"));
  CHECK(config.server.host == "0.0.0.0");
  CHECK(config.server.port == 0);
  CHECK(config.server.api_keys == std::vector<std::string>{"sk-a", "sk-b"});
  CHECK(config.server.max_queued_requests == 10);
  CHECK(config.server.request_timeout_s == Approx(2.5));
  CHECK(config.scheduler.max_num_seqs == 8);
  CHECK(config.scheduler.max_num_batched_tokens == 512);
  CHECK(config.scheduler.max_model_len == 4096u);
  CHECK(config.scheduler.block_size == 32);
  CHECK_FALSE(config.scheduler.enable_prefix_caching);
  CHECK(config.scheduler.plan_ahead == false);

  REQUIRE(config.stages.size() == 3);
  const stage_config& gpus = config.stages[0];
  CHECK(gpus.devices == std::vector<device_spec>{{device_kind::cuda, 0}, {device_kind::cuda, 1}});
  CHECK(gpus.tp_size() == 2);
  CHECK(gpus.layers == layer_range{0, 30});
  CHECK(gpus.gpu_memory_utilization == Approx(0.8));
  CHECK(gpus.cuda_graphs);
  CHECK_FALSE(config.stages[1].cuda_graphs);
  CHECK_FALSE(gpus.kv_cache_bytes);
  CHECK(gpus.node.empty());
  CHECK(gpus.at.line == 23);
  CHECK(gpus.devices_at.line == 24);
  CHECK(gpus.layers_at.line == 25);
  CHECK(gpus.layers_at.column == 10);
  // The same ordinal on another node is another device.
  CHECK(config.stages[1].node == "box-2");
  CHECK(config.stages[1].kv_cache_bytes == 6ull << 30);
  CHECK_FALSE(config.stages[1].gpu_memory_utilization);
  const stage_config& cpus = config.stages[2];
  CHECK(cpus.kind() == device_kind::cpu);
  CHECK(cpus.layers == layer_range{38, 40});
  CHECK(cpus.kv_cache_bytes == 1048576u);
  CHECK(cpus.num_threads == 8u);

  CHECK(config.cluster.enabled());
  CHECK(config.cluster.listen == "0.0.0.0:7000");
  CHECK(config.cluster.join_token_file == std::filesystem::path("/etc/glm4/token"));
  CHECK(config.cluster.tls_ca == std::filesystem::path("ca.pem"));
}

TEST_CASE("stage budgets default by device kind", "[config]") {
  const cluster_config config = parse(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [0, 3]
[[stage]]
devices = ["cpu:0"]
layers = [3, 4]
)");
  REQUIRE(config.stages.size() == 2);
  CHECK(config.stages[0].gpu_memory_utilization == Approx(0.9));
  CHECK_FALSE(config.stages[0].kv_cache_bytes);
  CHECK(config.stages[1].kv_cache_bytes == 4ull << 30);
  CHECK_FALSE(config.stages[1].gpu_memory_utilization);
}

TEST_CASE("sizes are read with decimal and binary units", "[config]") {
  CHECK(parse_byte_size("1024") == 1024u);
  CHECK(parse_byte_size("4GiB") == 4ull << 30);
  CHECK(parse_byte_size("512 MiB") == 512ull << 20);
  CHECK(parse_byte_size("1.5GB") == 1500000000u);
  CHECK(parse_byte_size("2KB") == 2000u);
  CHECK_FALSE(parse_byte_size("4 gigs"));
  CHECK_FALSE(parse_byte_size("GiB"));
  CHECK_FALSE(parse_byte_size(""));
}

TEST_CASE("device names", "[config]") {
  CHECK(parse_device("cuda:0") == device_spec{device_kind::cuda, 0});
  CHECK(parse_device("cpu:12") == device_spec{device_kind::cpu, 12});
  CHECK_FALSE(parse_device("cuda"));
  CHECK_FALSE(parse_device("cuda:"));
  CHECK_FALSE(parse_device("cuda:-1"));
  CHECK_FALSE(parse_device("cuda:1x"));
  CHECK_FALSE(parse_device("gpu:0"));
  CHECK(to_string(device_spec{device_kind::cuda, 3}) == "cuda:3");
}

TEST_CASE("the example files parse and fit glm-4-9b", "[config]") {
  const model_shape glm4_9b{40, 32, 2};
  const std::filesystem::path examples = std::filesystem::path(GLM4_TEST_DATA_DIR).parent_path().parent_path() / "examples";
  for (const char* name : {"cluster-cpu.toml", "cluster-2gpu.toml"}) {
    INFO(name);
    const cluster_config config = load_cluster_config(examples / name);
    CHECK(config.file == (examples / name).string());
    REQUIRE_FALSE(config.stages.empty());
    const auto ranges = resolve_for_model(config, glm4_9b);
    CHECK(ranges.front().begin == 0);
    CHECK(ranges.back().end == 40);
  }
}

TEST_CASE("a missing file is a config_error naming it", "[config]") {
  try {
    load_cluster_config("/nonexistent/cluster.toml");
    FAIL("accepted");
  } catch (const config_error& error) {
    CHECK(std::string(error.what()) == "/nonexistent/cluster.toml: cannot open the file");
  }
}

}  // namespace glm4::config

namespace glm4::config {

TEST_CASE("a layout-only file leaves the model to the command line", "[config]") {
  const cluster_config config = parse_cluster_config(R"(
[[stage]]
devices = ["cpu:0", "cpu:1"]
)", "layout.toml");
  CHECK(config.model.path.empty());
  CHECK(config.model.served_name.empty());
  REQUIRE(config.stages.size() == 1);
  CHECK(config.stages[0].tp_size() == 2);
}

}  // namespace glm4::config
