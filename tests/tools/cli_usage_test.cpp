// glm4-actor's contract for bad arguments: one error line naming the problem, the usage, exit code 2.
#include <catch2/catch.hpp>

#include "tests/tools/run_command.hpp"

using glm4::test::glm4_actor_path;
using glm4::test::run_command;

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

void require_usage_error(const std::vector<std::string>& args, const std::string& mentions) {
  std::vector<std::string> line{glm4_actor_path()};
  line.insert(line.end(), args.begin(), args.end());
  const auto result = run_command(line);
  CAPTURE(result.err);
  REQUIRE(result.exit_code == 2);
  REQUIRE(first_line(result.err).rfind("glm4-actor: error: ", 0) == 0);
  REQUIRE(first_line(result.err).find(mentions) != std::string::npos);
  REQUIRE(result.err.find("Usage:") != std::string::npos);
}

}  // namespace

TEST_CASE("every subcommand answers --help with its options", "[cli]") {
  for (const std::string command : {"make-model", "generate"}) {
    const auto result = run_command({glm4_actor_path(), command, "--help"});
    CAPTURE(command, result.out);
    REQUIRE(result.exit_code == 0);
    REQUIRE(result.out.find("--") != std::string::npos);
  }
  const auto top = run_command({glm4_actor_path(), "--help"});
  REQUIRE(top.exit_code == 0);
  REQUIRE(top.out.find("make-model") != std::string::npos);
  REQUIRE(top.out.find("generate") != std::string::npos);
}

TEST_CASE("bad arguments give one error line, the usage and exit code 2", "[cli]") {
  require_usage_error({}, "subcommand");
  require_usage_error({"frobnicate"}, "frobnicate");
  require_usage_error({"make-model", "--preset", "tiny"}, "--out");
  require_usage_error({"make-model", "--preset", "huge", "--out", "x"}, "huge");
  require_usage_error({"make-model", "--layout", "llama", "--out", "x"}, "llama");
  require_usage_error({"make-model", "--dtype", "int8", "--out", "x"}, "int8");
  require_usage_error({"generate", "--model", GLM4_TEST_DATA_DIR, "--prompt", "hi", "--max-tokens", "many"}, "many");
  require_usage_error({"generate", "--model", "/nonexistent/model", "--prompt", "hi"}, "/nonexistent/model");
  require_usage_error({"generate", "--model", GLM4_TEST_DATA_DIR}, "--prompt");
  const std::string model = std::string(GLM4_TEST_DATA_DIR) + "/models/glm-bf16";
  require_usage_error({"bench", "--model", model, "--device", "gpu"}, "--device: 'gpu' is not cpu or cuda:N");
  require_usage_error({"bench", "--model", model, "--device", "cuda:0", "--tp", "2"}, "--tp and --pp run CPU ranks");
  require_usage_error({"bench", "--model", model, "--plan-ahead", "maybe"}, "--plan-ahead");
  require_usage_error({"bench", "--model", model, "--cuda-graphs", "on"}, "--cuda-graphs applies to --device cuda:N");
  require_usage_error({"bench", "--model", model, "--kv-cache-dtype", "fp8"}, "--kv-cache-dtype: unknown dtype 'fp8'");
  require_usage_error({"serve", "--model", model, "--kv-cache-dtype", "fp8"}, "--kv-cache-dtype: unknown dtype 'fp8'");
  require_usage_error({"serve", "--model", model, "--dtype", "int4"}, "--dtype: unknown dtype 'int4'");
}

TEST_CASE("an out-of-range sampling flag is named as the user typed it", "[cli]") {
  const std::string model = std::string(GLM4_TEST_DATA_DIR) + "/models/glm-bf16";
  require_usage_error({"generate", "--model", model, "--prompt", "hi", "--top-p", "1.5"}, "--top-p");
  require_usage_error({"generate", "--model", model, "--prompt", "hi", "--repetition-penalty", "0"},
                      "--repetition-penalty");
  require_usage_error({"generate", "--model", model, "--prompt", "hi", "--system", "be brief"}, "--chat");
}

TEST_CASE("a directory that is not a checkpoint is a runtime error naming the file", "[cli]") {
  const auto result = run_command({glm4_actor_path(), "generate", "--model", GLM4_TEST_DATA_DIR, "--prompt", "hi"});
  CAPTURE(result.err);
  REQUIRE(result.exit_code == 1);
  REQUIRE(result.err.find("config.json") != std::string::npos);
}
