// Every mistake names the file, the line and column and the key path.
#include <catch2/catch.hpp>

#include "tests/config/config_test_support.hpp"

namespace glm4::config {
using test::parse_error;

TEST_CASE("a TOML syntax error keeps toml++'s position", "[config][errors]") {
  const config_error error = parse_error(R"(
[model]
path = "m
)");
  CHECK(error.line() == 2);
  CHECK(error.key_path().empty());
  CHECK(std::string(error.what()).rfind("cluster.toml:2:", 0) == 0);
}

TEST_CASE("unknown keys are errors with a suggestion", "[config][errors]") {
  SECTION("a typo in a section") {
    const config_error error = parse_error(R"(
[model]
path = "m"

[scheduler]
max_num_seq = 4
)");
    CHECK_ERROR_AT(error, 5, 1, "scheduler.max_num_seq", "unknown key 'max_num_seq'; did you mean 'max_num_seqs'?");
    CHECK(std::string(error.what()) ==
          "cluster.toml:5:1: scheduler.max_num_seq: unknown key 'max_num_seq'; did you mean 'max_num_seqs'?");
  }
  SECTION("in a stage, indented") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
  devices = ["cpu:0"]
  layer = [0, 4]
)");
    CHECK_ERROR_AT(error, 5, 3, "stage[0].layer", "did you mean 'layers'?");
  }
  SECTION("an unknown section lists nothing close") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[sampling]
temperature = 0.7
)");
    CHECK_ERROR_AT(error, 3, 2, "sampling", "unknown key 'sampling' (known keys: model server scheduler stage cluster)");
  }
  SECTION("a misspelt section") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[sever]
port = 1
)");
    CHECK_ERROR_AT(error, 3, 2, "sever", "did you mean 'server'?");
  }
}

TEST_CASE("wrong types and values out of range", "[config][errors]") {
  SECTION("a string where an integer belongs") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[server]
port = "8000"
)");
    CHECK_ERROR_AT(error, 4, 8, "server.port", "expected an integer, got a string");
  }
  SECTION("a port out of range") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[server]
port = 70000
)");
    CHECK_ERROR_AT(error, 4, 8, "server.port", "70000 is out of range (0 to 65535)");
  }
  SECTION("gpu_memory_utilization above 1") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
gpu_memory_utilization = 1.5
)");
    CHECK_ERROR_AT(error, 5, 26, "stage[0].gpu_memory_utilization", "1.5 is out of range (more than 0, at most 1)");
  }
  SECTION("a block size that is not a power of two") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[scheduler]
block_size = 12
)");
    CHECK_ERROR_AT(error, 4, 14, "scheduler.block_size", "not a power of two");
  }
  SECTION("fewer batched tokens than sequences") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[scheduler]
max_num_seqs = 64
max_num_batched_tokens = 32
)");
    CHECK_ERROR_AT(error, 5, 26, "scheduler.max_num_batched_tokens", "must be at least max_num_seqs (64)");
  }
  SECTION("an unknown dtype") {
    const config_error error = parse_error(R"(
[model]
path = "m"
dtype = "int4"
)");
    CHECK_ERROR_AT(error, 3, 9, "model.dtype", "unknown dtype 'int4'");
  }
  SECTION("a KV cache dtype this runtime does not store") {
    const config_error error = parse_error(R"(
[model]
path = "m"
kv_cache_dtype = "fp8"
)");
    CHECK_ERROR_AT(error, 3, 18, "model.kv_cache_dtype", "unknown dtype 'fp8' (expected auto, bfloat16, float16 or float32)");
  }
  SECTION("a size without a known unit") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cpu:0"]
kv_cache_bytes = "4 gigs"
)");
    CHECK_ERROR_AT(error, 5, 18, "stage[0].kv_cache_bytes", "cannot read '4 gigs' as a size");
  }
  SECTION("a section that is not a table") {
    const config_error error = parse_error(R"(
model = "m"
)");
    CHECK_ERROR_AT(error, 1, 9, "model", "expected a table [model], got a string");
  }
  SECTION("[stage] written as a single table") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[stage]
devices = ["cpu:0"]
)");
    CHECK_ERROR_AT(error, 3, 1, "stage", "expected [[stage]] tables");
  }
}

TEST_CASE("missing required keys", "[config][errors]") {
  SECTION("an empty model path points at it") {
    const config_error error = parse_error(R"(
[model]
path = ""
)");
    CHECK_ERROR_AT(error, 2, 8, "model.path", "empty");
  }
  SECTION("a stage without devices") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
layers = [0, 4]
)");
    CHECK_ERROR_AT(error, 3, 1, "stage[0].devices", "missing");
  }
}

TEST_CASE("device mistakes", "[config][errors]") {
  SECTION("an unknown device points at the element") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0", "tpu:1"]
)");
    CHECK_ERROR_AT(error, 4, 22, "stage[0].devices", "unknown device 'tpu:1' (expected \"cuda:N\" or \"cpu:N\")");
  }
  SECTION("cuda and cpu ranks in one stage") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0", "cpu:0"]
)");
    CHECK_ERROR_AT(error, 4, 22, "stage[0].devices", "mixes cuda and cpu devices");
  }
  SECTION("a device listed twice") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:1", "cuda:1"]
)");
    CHECK_ERROR_AT(error, 4, 22, "stage[0].devices", "cuda:1 is listed twice");
  }
  SECTION("a device used by two stages") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [0, 2]
[[stage]]
devices = ["cuda:0"]
layers = [2, 4]
)");
    CHECK_ERROR_AT(error, 7, 11, "stage[1].devices", "cuda:0 is already used by stage[0]");
  }
  SECTION("a GPU option on a CPU stage") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cpu:0"]
gpu_memory_utilization = 0.5
)");
    CHECK_ERROR_AT(error, 5, 26, "stage[0].gpu_memory_utilization", "CPU stage takes kv_cache_bytes");
  }
  SECTION("CUDA graphs on a CPU stage") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cpu:0"]
cuda_graphs = true
)");
    CHECK_ERROR_AT(error, 5, 15, "stage[0].cuda_graphs", "applies to GPU stages only");
  }
  SECTION("both KV budgets on a GPU stage") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
kv_cache_bytes = "1GiB"
gpu_memory_utilization = 0.5
)");
    CHECK_ERROR_AT(error, 6, 26, "stage[0].gpu_memory_utilization", "not both");
  }
  SECTION("a remote node without [cluster]") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
node = "box-2"
)");
    CHECK_ERROR_AT(error, 3, 1, "stage[0].node", "listen is not set");
  }
}

TEST_CASE("layer range mistakes", "[config][errors]") {
  SECTION("overlap") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [0, 20]
[[stage]]
devices = ["cuda:1"]
layers = [18, 40]
)");
    CHECK(std::string(error.what()) == "cluster.toml:8:10: stage[1].layers: layers 18..20 overlap stage[0] (0..20)");
  }
  SECTION("gap") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [0, 20]
[[stage]]
devices = ["cuda:1"]
layers = [22, 40]
)");
    CHECK_ERROR_AT(error, 8, 10, "stage[1].layers", "layers 20..22 are in no stage");
  }
  SECTION("the first stage must start at layer 0") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [2, 20]
)");
    CHECK_ERROR_AT(error, 5, 10, "stage[0].layers", "layers 0..2 are in no stage");
  }
  SECTION("an empty range") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [20, 20]
)");
    CHECK_ERROR_AT(error, 5, 10, "stage[0].layers", "is empty");
  }
  SECTION("not a pair") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [0, 20, 40]
)");
    CHECK_ERROR_AT(error, 5, 10, "stage[0].layers", "expected an array of 2 integers, got 3 elements");
  }
  SECTION("a negative layer points at the element") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [-1, 20]
)");
    CHECK_ERROR_AT(error, 5, 11, "stage[0].layers", "must not be negative");
  }
  SECTION("layers in some stages but not all") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [0, 20]
[[stage]]
devices = ["cuda:1"]
)");
    CHECK_ERROR_AT(error, 6, 1, "stage[1]", "give every stage its layers, or none");
  }
}

TEST_CASE("cluster and server option conflicts", "[config][errors]") {
  SECTION("a cluster without a join token") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[cluster]
listen = "0.0.0.0:7000"
)");
    CHECK_ERROR_AT(error, 3, 1, "cluster.join_token", "missing");
  }
  SECTION("a listen address without a port") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[cluster]
listen = "0.0.0.0"
join_token = "t"
)");
    CHECK_ERROR_AT(error, 4, 10, "cluster.listen", "is not HOST:PORT");
  }
  SECTION("a certificate without its key") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[cluster]
listen = "0.0.0.0:7000"
join_token = "t"
tls_cert = "c.pem"
)");
    CHECK_ERROR_AT(error, 6, 12, "cluster.tls_cert", "tls_cert and tls_key go together");
  }
  SECTION("api_keys and api_key_file") {
    const config_error error = parse_error(R"(
[model]
path = "m"
[server]
api_keys = ["k"]
api_key_file = "keys.txt"
)");
    CHECK_ERROR_AT(error, 5, 16, "server.api_key_file", "not both");
  }
}

}  // namespace glm4::config
