// Checks against the model's counts: tensor-parallel sizes and layer coverage.
#include <catch2/catch.hpp>

#include "tests/config/config_test_support.hpp"

namespace glm4::config {
using test::parse;

namespace {

const model_shape glm4_9b{40, 32, 2};

std::string stage_of(int tp, const char* layers = "") {
  std::string text = "[[stage]]\ndevices = [";
  for (int rank = 0; rank < tp; ++rank) text += std::string(rank ? ", " : "") + "\"cuda:" + std::to_string(rank) + "\"";
  return text + "]\n" + layers;
}

config_error resolve_error(const cluster_config& config, const model_shape& shape) {
  try {
    resolve_for_model(config, shape);
  } catch (const config_error& error) {
    return error;
  }
  FAIL("the layout was accepted");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("tensor-parallel sizes 1, 2, 4 and 8 fit 32 heads and 2 KV heads", "[config][model]") {
  for (int tp : {1, 2, 4, 8}) {
    INFO("tp " << tp);
    const cluster_config config = parse("[model]\npath = \"m\"\n" + stage_of(tp));
    CHECK(resolve_for_model(config, glm4_9b) == std::vector<layer_range>{{0, 40}});
  }
}

TEST_CASE("a tensor-parallel size that does not fit the heads is refused", "[config][model]") {
  SECTION("3 does not divide 32 heads") {
    const cluster_config config = parse("[model]\npath = \"m\"\n" + stage_of(3));
    const config_error error = resolve_error(config, glm4_9b);
    CHECK_ERROR_AT(error, 4, 11, "stage[0].devices", "tensor-parallel size 3 does not divide the model's 32 attention heads");
    CHECK(std::string(error.what()).find("a stage may have 1, 2, 4, 8, 16, 32 devices") != std::string::npos);
  }
  SECTION("6 ranks and 4 KV heads: neither divides the other") {
    const cluster_config config = parse("[model]\npath = \"m\"\n" + stage_of(6));
    const config_error error = resolve_error(config, {8, 24, 4});
    CHECK_ERROR_AT(error, 4, 11, "stage[0].devices", "6 and the model's 4 KV heads: one must divide the other");
  }
  SECTION("8 ranks for the 4 heads of the fixture") {
    const cluster_config config = parse("[model]\npath = \"m\"\n" + stage_of(8));
    const config_error error = resolve_error(config, {2, 4, 2});
    CHECK(error.key_path() == "stage[0].devices");
    CHECK(std::string(error.what()).find("a stage may have 1, 2, 4 devices") != std::string::npos);
  }
}

TEST_CASE("uneven layer ranges, a CPU stage after GPU stages", "[config][model]") {
  const cluster_config config = parse(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
layers = [0, 27]
[[stage]]
devices = ["cuda:4", "cuda:5"]
layers = [27, 37]
[[stage]]
devices = ["cpu:0"]
layers = [37, 40]
)");
  CHECK(resolve_for_model(config, glm4_9b) == std::vector<layer_range>{{0, 27}, {27, 37}, {37, 40}});
}

TEST_CASE("layers are split evenly when no stage names them", "[config][model]") {
  const cluster_config config = parse("[model]\npath = \"m\"\n" + stage_of(2) + "[[stage]]\ndevices = [\"cpu:0\"]\n" +
                                      "[[stage]]\ndevices = [\"cpu:1\"]\n");
  CHECK(resolve_for_model(config, glm4_9b) == std::vector<layer_range>{{0, 13}, {13, 26}, {26, 40}});
  const cluster_config none = parse("[model]\npath = \"m\"\n");
  CHECK(resolve_for_model(none, glm4_9b) == std::vector<layer_range>{{0, 40}});
  const config_error error = resolve_error(config, {2, 32, 2});
  CHECK_ERROR_AT(error, 7, 1, "stage[2].layers", "3 stages for a model of 2 layers");
}

TEST_CASE("ranges must end exactly at the model's last layer", "[config][model]") {
  SECTION("past the end") {
    const cluster_config config = parse(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [0, 20]
[[stage]]
devices = ["cuda:1"]
layers = [20, 42]
)");
    const config_error error = resolve_error(config, glm4_9b);
    CHECK(std::string(error.what()) ==
          "cluster.toml:8:10: stage[1].layers: layers 20..42 pass the model's last layer (it has 40 layers: 0..40)");
  }
  SECTION("short of the end") {
    const cluster_config config = parse(R"(
[model]
path = "m"
[[stage]]
devices = ["cuda:0"]
layers = [0, 38]
)");
    const config_error error = resolve_error(config, glm4_9b);
    CHECK_ERROR_AT(error, 5, 10, "stage[0].layers", "layers 38..40 are in no stage (the model has 40 layers)");
  }
}

}  // namespace glm4::config
