// glm4-actor generate end to end: reproduces transformers' greedy continuations on every fixture, and
// make-model checkpoints of one seed generate the same text in every layout.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/utf8.hpp"
#include "tests/tools/run_command.hpp"

namespace fs = std::filesystem;
using glm4::test::glm4_actor_path;
using glm4::test::run_command;

namespace {

boost::json::value read_json(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return boost::json::parse(text.str());
}

/// What generate prints for greedy ids: the text up to the first end-of-reply id, special tokens
/// skipped, ill-formed UTF-8 as U+FFFD, then the closing newline.
std::string expected_stdout(const glm4::model::tokenizer& tok, const boost::json::object& prompt) {
  std::vector<glm4::model::token_id> ids;
  for (const auto& id : prompt.at("greedy_ids").as_array()) ids.push_back(static_cast<glm4::model::token_id>(id.as_int64()));
  if (const auto* eos = prompt.if_contains("first_eos_step"); eos && !eos->is_null())
    ids.resize(static_cast<std::size_t>(eos->as_int64()));
  return glm4::model::utf8::replace_invalid(tok.decode(ids, /*skip_special=*/true)) + "\n";
}

struct greedy_run {
  glm4::test::command_result result;
  std::string expected;  // transformers' greedy continuation, as generate prints it
};

/// generate --config over glm-bf16's first reference prompt, greedy, with `model_key` added to [model].
greedy_run generate_glm_bf16_with(const std::string& model_key) {
  const fs::path data = GLM4_TEST_DATA_DIR;
  const auto reference = read_json(data / "reference" / "glm-bf16.json").as_object();
  const auto model_dir = data / "models" / "glm-bf16";
  const auto config_file = fs::temp_directory_path() / ("glm4_model_key_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(config_file) << "[model]\npath = \"" << model_dir.string() << "\"\n" << model_key << "\n";
  const auto& prompt = reference.at("prompts").as_array().at(0).as_object();
  std::vector<std::string> args{glm4_actor_path(), "generate", "--config", config_file.string(), "--prompt",
                                std::string(prompt.at("text").as_string()), "--temperature", "0", "--max-tokens",
                                std::to_string(reference.at("num_greedy").as_int64())};
  if (!prompt.at("chat").as_bool()) args.push_back("--no-prefix");
  greedy_run run{run_command(args), expected_stdout(glm4::model::tokenizer::load(model_dir), prompt)};
  fs::remove(config_file);
  return run;
}

}  // namespace

TEST_CASE("generate reproduces the transformers greedy continuation on every fixture", "[cli][parity]") {
  const fs::path data = GLM4_TEST_DATA_DIR;
  int num_runs = 0;
  for (const auto& entry : fs::directory_iterator(data / "reference")) {
    if (entry.path().extension() != ".json") continue;
    const auto reference = read_json(entry.path()).as_object();
    const auto num_greedy = std::to_string(reference.at("num_greedy").as_int64());
    for (const auto& dir_name : reference.at("model_dirs").as_array()) {
      const auto model_dir = data / "models" / std::string(dir_name.as_string());
      const auto tok = glm4::model::tokenizer::load(model_dir);
      for (const auto& prompt_value : reference.at("prompts").as_array()) {
        const auto& prompt = prompt_value.as_object();
        std::vector<std::string> args{glm4_actor_path(), "generate",      "--model", model_dir.string(),
                                      "--prompt",        std::string(prompt.at("text").as_string()),
                                      "--temperature",   "0",             "--max-tokens", num_greedy,
                                      "--threads",       "2"};
        if (!prompt.at("chat").as_bool()) args.push_back("--no-prefix");
        const auto result = run_command(args);
        CAPTURE(model_dir.string(), prompt.at("name").as_string().c_str(), result.err);
        REQUIRE(result.exit_code == 0);
        REQUIRE(result.out == expected_stdout(tok, prompt));
        REQUIRE(result.err.find("decode:") != std::string::npos);
        ++num_runs;
      }
    }
  }
  REQUIRE(num_runs >= 18);  // 6 model dirs x 3 prompts
}

TEST_CASE("make-model checkpoints of one seed generate the same text in every layout", "[cli][make-model]") {
  const auto root = fs::temp_directory_path() / ("glm4_make_model_" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::string first_output;
  for (const std::string layout : {"glm", "glm4", "chatglm"}) {
    const auto dir = (root / layout).string();
    const auto made = run_command({glm4_actor_path(), "make-model", "--preset", "tiny", "--layout", layout,
                                   "--dtype", "f32", "--seed", "11", "--out", dir});
    CAPTURE(layout, made.err);
    REQUIRE(made.exit_code == 0);
    const auto generated = run_command({glm4_actor_path(), "generate", "--model", dir, "--chat", "--prompt",
                                        "Hello 你好", "--temperature", "0", "--max-tokens", "24", "--ignore-eos"});
    CAPTURE(generated.err);
    REQUIRE(generated.exit_code == 0);
    REQUIRE(generated.out.size() > 1);
    // glm4 adds two norms per layer, so only glm and chatglm must agree exactly.
    if (layout == "glm") first_output = generated.out;
    if (layout == "chatglm") REQUIRE(generated.out == first_output);
  }
  fs::remove_all(root);
}

TEST_CASE("generate --config runs tensor- and pipeline-parallel CPU ranks and reproduces transformers", "[cli][parity][shard]") {
  const fs::path data = GLM4_TEST_DATA_DIR;
  const auto root = fs::temp_directory_path() / ("glm4_generate_config_" + std::to_string(::getpid()));
  fs::create_directories(root);
  int num_runs = 0;
  for (const std::string reference_name : {"glm-f32", "glm4-f32"}) {
    const auto reference = read_json(data / "reference" / (reference_name + ".json")).as_object();
    const auto num_greedy = std::to_string(reference.at("num_greedy").as_int64());
    for (const auto& dir_name : reference.at("model_dirs").as_array()) {
      const auto model_dir = data / "models" / std::string(dir_name.as_string());
      const auto config_file = root / (std::string(dir_name.as_string()) + ".toml");
      // Two stages of two ranks: the fixtures have 2 layers, 4 query and 2 KV heads.
      std::ofstream(config_file) << "[model]\npath = \"" << model_dir.string() << "\"\n"
                                 << "[[stage]]\ndevices = [\"cpu:0\", \"cpu:1\"]\nnum_threads = 1\n"
                                 << "[[stage]]\ndevices = [\"cpu:2\", \"cpu:3\"]\nnum_threads = 1\n";
      const auto tok = glm4::model::tokenizer::load(model_dir);
      const auto& prompt = reference.at("prompts").as_array().at(0).as_object();
      std::vector<std::string> args{glm4_actor_path(), "generate", "--config", config_file.string(), "--prompt",
                                    std::string(prompt.at("text").as_string()), "--temperature", "0", "--max-tokens", num_greedy};
      if (!prompt.at("chat").as_bool()) args.push_back("--no-prefix");
      const auto result = run_command(args);
      CAPTURE(model_dir.string(), result.err);
      REQUIRE(result.exit_code == 0);
      CHECK(result.out == expected_stdout(tok, prompt));
      CHECK(result.err.find("layers 0..1 on 2 x cpu") != std::string::npos);
      CHECK(result.err.find("tp 1/2 layers 1..2") != std::string::npos);
      ++num_runs;
    }
  }
  CHECK(num_runs >= 3);  // glm, chatglm and glm4 layouts

  // A layout the model cannot take is refused with the file position, before anything runs.
  const auto bad = root / "tp3.toml";
  std::ofstream(bad) << "[model]\npath = \"" << (data / "models" / "glm-f32").string() << "\"\n"
                     << "[[stage]]\ndevices = [\"cpu:0\", \"cpu:1\", \"cpu:2\"]\n";
  // A layout-only file takes the model from --model, and says so when there is none.
  const auto layout_only = root / "layout.toml";
  std::ofstream(layout_only) << "[[stage]]\ndevices = [\"cpu:0\", \"cpu:1\"]\n";
  const auto no_model = run_command({glm4_actor_path(), "generate", "--config", layout_only.string(), "--prompt", "hi"});
  CHECK(no_model.exit_code == 2);
  CHECK(no_model.err.find("has no [model] path; give it there or pass --model DIR") != std::string::npos);
  const auto with_model = run_command({glm4_actor_path(), "generate", "--config", layout_only.string(), "--model",
                                       (data / "models" / "glm-f32").string(), "--prompt", "hi", "--max-tokens", "3"});
  CAPTURE(with_model.err);
  CHECK(with_model.exit_code == 0);
  CHECK(with_model.err.find("tp 1/2") != std::string::npos);

  const auto refused = run_command({glm4_actor_path(), "generate", "--config", bad.string(), "--prompt", "hi"});
  CHECK(refused.exit_code != 0);
  CHECK(refused.err.find("tp3.toml:4:11: stage[0].devices") != std::string::npos);
  CHECK(refused.err.find("does not divide the model's 4 attention heads") != std::string::npos);
  fs::remove_all(root);
}

TEST_CASE("generate --config plans ahead on one stage of tensor-parallel ranks and still reproduces transformers",
          "[cli][parity][plan_ahead]") {
  const fs::path data = GLM4_TEST_DATA_DIR;
  const auto root = fs::temp_directory_path() / ("glm4_generate_ahead_" + std::to_string(::getpid()));
  fs::create_directories(root);
  const auto reference = read_json(data / "reference" / "glm4-f32.json").as_object();
  const auto num_greedy = std::to_string(reference.at("num_greedy").as_int64());
  const auto model_dir = data / "models" / std::string(reference.at("model_dirs").as_array().at(0).as_string());
  const auto tok = glm4::model::tokenizer::load(model_dir);
  const auto& prompt = reference.at("prompts").as_array().at(0).as_object();
  struct layout {
    std::string toml;
    const char* scheduler_line;
  };
  const std::string ranks = "[[stage]]\ndevices = [\"cpu:0\", \"cpu:1\"]\nnum_threads = 1\n";
  const std::vector<layout> layouts{
      {"[scheduler]\nplan_ahead = true\n" + ranks, "scheduler: plans each step while the one before runs"},
      {"[scheduler]\nplan_ahead = false\n" + ranks, "scheduler: plans each step once the one before is back"},
      // Two stages: the first does not sample, so nothing is planned ahead whatever the setting.
      {"[scheduler]\nplan_ahead = true\n" + ranks + "[[stage]]\ndevices = [\"cpu:2\"]\nnum_threads = 1\n",
       "scheduler: plans each step once the one before is back"}};
  for (std::size_t i = 0; i < layouts.size(); ++i) {
    const auto config_file = root / ("layout" + std::to_string(i) + ".toml");
    std::ofstream(config_file) << "[model]\npath = \"" << model_dir.string() << "\"\n" << layouts[i].toml;
    std::vector<std::string> args{glm4_actor_path(), "generate", "--config", config_file.string(), "--prompt",
                                  std::string(prompt.at("text").as_string()), "--temperature", "0", "--max-tokens", num_greedy};
    if (!prompt.at("chat").as_bool()) args.push_back("--no-prefix");
    const auto result = run_command(args);
    CAPTURE(i, result.err);
    REQUIRE(result.exit_code == 0);
    CHECK(result.out == expected_stdout(tok, prompt));
    CHECK(result.err.find(layouts[i].scheduler_line) != std::string::npos);
  }
  fs::remove_all(root);
}

TEST_CASE("[model] dtype = float32 widens a BF16 checkpoint and still reproduces transformers", "[cli][parity][dtype]") {
  const greedy_run run = generate_glm_bf16_with("dtype = \"float32\"");
  CAPTURE(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.err.find("converting the weights from BF16 to F32") != std::string::npos);
  CHECK(run.result.err.find("(F32 ") != std::string::npos);  // the memory plan counts F32 weights
  CHECK(run.result.out == run.expected);
}

TEST_CASE("[model] kv_cache_dtype = float16 keeps the cache in F16 and still reproduces transformers",
          "[cli][parity][dtype]") {
  const greedy_run run = generate_glm_bf16_with("kv_cache_dtype = \"float16\"");
  CAPTURE(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.result.err.find("KV cache F16 ([model] kv_cache_dtype)") != std::string::npos);  // the memory plan, per rank
  CHECK(run.result.out == run.expected);
}
