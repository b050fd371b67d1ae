// glm4-actor doctor: exits 0 with or without a GPU, says plainly when there is none, and plans memory for --model.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/tools/run_command.hpp"

using glm4::test::glm4_actor_path;
using glm4::test::run_command;

TEST_CASE("doctor reports the machine and exits 0 whether or not it has a GPU", "[cli][doctor]") {
  const auto result = run_command({glm4_actor_path(), "doctor"});
  CAPTURE(result.out, result.err);
  REQUIRE(result.exit_code == 0);
  REQUIRE(result.out.rfind("glm4-actor doctor\n", 0) == 0);
  REQUIRE(result.out.find("build:") != std::string::npos);
  if (result.out.find("GPU 0:") == std::string::npos) {
    // No GPU (or a build without CUDA): one plain sentence, and the CPU backend named as the way on.
    REQUIRE(result.out.find("No CUDA GPU") != std::string::npos);
    REQUIRE(result.out.find("CPU backend") != std::string::npos);
  } else {
    REQUIRE(result.out.find("compute capability") != std::string::npos);
    REQUIRE(result.out.find("runs:") != std::string::npos);
  }
}

TEST_CASE("doctor --model prints the checkpoint's weight and KV cache needs", "[cli][doctor]") {
  const std::string model = std::string(GLM4_TEST_DATA_DIR) + "/models/glm4-f32";
  const auto result = run_command({glm4_actor_path(), "doctor", "--model", model});
  CAPTURE(result.out, result.err);
  REQUIRE(result.exit_code == 0);
  REQUIRE(result.out.find("glm4 layout, F32") != std::string::npos);
  // 2 layers x 2 KV heads x 24 dims, keys and values, 4 bytes each: F32 weights keep an F32 cache.
  REQUIRE(result.out.find("KV cache on a GPU 768 B per token (F32 keys and values") != std::string::npos);
  REQUIRE(result.out.find("weights ") != std::string::npos);

  // BF16 weights: a GPU keeps the cache in BF16, half the bytes.
  const auto bf16 = run_command({glm4_actor_path(), "doctor", "--model", std::string(GLM4_TEST_DATA_DIR) + "/models/glm4-bf16"});
  CAPTURE(bf16.out, bf16.err);
  REQUIRE(bf16.exit_code == 0);
  CHECK(bf16.out.find("KV cache on a GPU 384 B per token (BF16 keys and values") != std::string::npos);
}

TEST_CASE("doctor refuses a memory fraction outside 0..1 and a missing model", "[cli][doctor]") {
  for (const std::string fraction : {"0", "1.5"}) {
    const auto result = run_command({glm4_actor_path(), "doctor", "--gpu-memory-utilization", fraction});
    CAPTURE(fraction, result.err);
    REQUIRE(result.exit_code == 2);
    REQUIRE(result.err.find("--gpu-memory-utilization") != std::string::npos);
  }
  const auto missing = run_command({glm4_actor_path(), "doctor", "--model", "/nonexistent/model"});
  REQUIRE(missing.exit_code == 2);
  REQUIRE(missing.err.find("/nonexistent/model") != std::string::npos);
}

TEST_CASE("doctor --config plans a layout rank by rank; the smallest rank decides the pool", "[cli][doctor][shard]") {
  const std::string model = std::string(GLM4_TEST_DATA_DIR) + "/models/glm-f32";
  const auto dir = std::filesystem::temp_directory_path() / ("glm4_doctor_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto layout = dir / "layout.toml";
  // glm-f32: 2 layers, 4 query and 2 KV heads of 24 dims. Per rank of a 2 x tp 2 layout: one layer
  // and one KV head, so 2 x 24 x 4 = 192 bytes of F32 keys and values per token.
  std::ofstream(layout) << "[[stage]]\ndevices = [\"cpu:0\", \"cpu:1\"]\nkv_cache_bytes = \"1MiB\"\n"
                        << "[[stage]]\ndevices = [\"cpu:2\", \"cpu:3\"]\nkv_cache_bytes = \"2MiB\"\n";
  const auto result = run_command({glm4_actor_path(), "doctor", "--config", layout.string(), "--model", model});
  CAPTURE(result.out, result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.find("stage 0: layers 0..1, tensor parallel 2") != std::string::npos);
  CHECK(result.out.find("stage 1: layers 1..2, tensor parallel 2") != std::string::npos);
  CHECK(result.out.find("cpu:3: weights") != std::string::npos);
  CHECK(result.out.find("KV 192 B per token (F32); KV budget 1.00 MiB = 5461 tokens") != std::string::npos);
  CHECK(result.out.find("KV budget 2.00 MiB = 10922 tokens") != std::string::npos);
  CHECK(result.out.find("pool:   5461 tokens of KV cache") != std::string::npos);

  // [model] kv_cache_dtype halves the bytes per token, so the same budget holds twice the tokens.
  const auto narrow = dir / "bf16_kv.toml";
  std::ofstream(narrow) << "[model]\nkv_cache_dtype = \"bfloat16\"\n[[stage]]\ndevices = [\"cpu:0\"]\nkv_cache_bytes = \"1MiB\"\n";
  const auto halved = run_command({glm4_actor_path(), "doctor", "--config", narrow.string(), "--model", model});
  CAPTURE(halved.out, halved.err);
  CHECK(halved.out.find("KV 384 B per token (BF16); KV budget 1.00 MiB = 2730 tokens") != std::string::npos);
  CHECK(halved.out.find("KV cache on a GPU 384 B per token (BF16 keys and values") != std::string::npos);

  // A GPU rank keeps room for the largest step's activations (max_num_batched_tokens 64 here): they
  // are planned, not guessed.
  const auto gpu = dir / "gpu.toml";
  std::ofstream(gpu) << "[scheduler]\nmax_num_seqs = 4\nmax_num_batched_tokens = 64\n[[stage]]\ndevices = [\"cuda:0\"]\n";
  const auto planned = run_command({glm4_actor_path(), "doctor", "--config", gpu.string(), "--model", model});
  CAPTURE(planned.out, planned.err);
  CHECK(planned.out.find("cuda:0: weights") != std::string::npos);
  CHECK(planned.out.find("activations and workspaces 256.") != std::string::npos);  // tiny steps: mostly the margin

  // A layout the model cannot take fails as serve would, naming the file and line.
  const auto bad = dir / "tp3.toml";
  std::ofstream(bad) << "[[stage]]\ndevices = [\"cpu:0\", \"cpu:1\", \"cpu:2\"]\n";
  const auto refused = run_command({glm4_actor_path(), "doctor", "--config", bad.string(), "--model", model});
  CHECK(refused.exit_code != 0);
  CHECK(refused.err.find("tp3.toml:2") != std::string::npos);
  std::filesystem::remove_all(dir);
}
