// glm4-actor generate: one prompt, no server; streams text to stdout, speed to stderr. It runs on
// the actor runtime serve uses: the scheduler actor and a device actor per rank of the layout.
#include <caf/send.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <iostream>
#include <optional>
#include <sstream>

#include "actors/device_layout.hpp"
#include "actors/local_runtime.hpp"
#include "config/cluster_config.hpp"
#include "model/checkpoint/config_parser.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "tools/cli/cli_support.hpp"
#include "tools/cli/serving_stack.hpp"

namespace glm4::cli {
namespace {

struct generate_flags {
  std::string model_dir;
  std::string config_file;
  std::string prompt;
  std::string system;
  bool chat = false;
  bool no_prefix = false;
  bool ignore_eos = false;
  int max_tokens = 128;
  std::optional<int> threads;
  engine::sampling_params sampling;
};

/// GLM-4 prompts start "[gMASK]<sop>"; the chat template adds it, a raw prompt gets it unless it has it.
std::vector<model::token_id> prompt_ids(const model::tokenizer& tok, const generate_flags& flags) {
  if (flags.chat) {
    std::vector<model::chat_message> messages;
    if (!flags.system.empty()) messages.push_back({"system", flags.system});
    messages.push_back({"user", flags.prompt});
    return tok.encode_chat(messages, true);
  }
  std::vector<model::token_id> ids;
  if (!flags.no_prefix && flags.prompt.rfind("[gMASK]", 0) != 0 && tok.gmask_id() && tok.sop_id()) {
    ids.push_back(*tok.gmask_id());
    ids.push_back(*tok.sop_id());
  }
  tok.encode(flags.prompt, ids);
  return ids;
}

// Prints each event's text as it arrives (on the scheduler's thread) and resolves `done` at the end.
struct stdout_sink : actors::request_sink {
  std::promise<void> done;
  std::optional<std::chrono::steady_clock::time_point> first_token_at;
  std::size_t num_output = 0;
  std::string finish_reason = "length";
  std::string failure;

  void on_rejected(actors::rejection reason) override {
    failure = reason.message;
    done.set_value();
  }
  void on_accepted() override {}
  void on_scheduled(std::chrono::steady_clock::time_point) override {}
  void on_events(std::vector<engine::request_output> events) override {
    for (const auto& event : events) {
      if (!event.tokens.empty() && !first_token_at) first_token_at = std::chrono::steady_clock::now();
      num_output += event.tokens.size();
      std::cout << event.text << std::flush;
      if (!event.finish) continue;
      finish_reason = std::string(engine::to_string(*event.finish));
      if (*event.finish == engine::finish_reason::error) failure = event.message;
      done.set_value();
    }
  }
};

int run_generate(const CLI::App& command, const generate_flags& flags) {
  if (!flags.chat && !flags.system.empty()) throw usage_error(command, "--system needs --chat");
  if (flags.model_dir.empty() && flags.config_file.empty()) throw usage_error(command, "give --model or --config");
  auto sampling = flags.sampling;
  sampling.max_tokens = flags.max_tokens;
  sampling.ignore_eos = flags.ignore_eos;

  // --model alone runs on this machine's CPU; --config lays the model out as cluster.toml says.
  config::cluster_config cluster;
  if (!flags.config_file.empty()) cluster = config::load_cluster_config(flags.config_file);
  if (!flags.model_dir.empty()) cluster.model.path = flags.model_dir;
  if (cluster.model.path.empty()) throw usage_error(command, flags.config_file + " has no [model] path; give it there or pass --model DIR");
  if (flags.config_file.empty()) {
    config::stage_config cpu;
    cpu.devices.push_back(config::device_spec{});
    cluster.stages.push_back(std::move(cpu));
  }
  if (flags.threads)
    for (auto& stage : cluster.stages)
      if (stage.kind() == config::device_kind::cpu) stage.num_threads = static_cast<std::uint32_t>(*flags.threads);

  const auto model_config = model::load_model_config(cluster.model.path);
  const auto tok = model::tokenizer::load(cluster.model.tokenizer.value_or(cluster.model.path));
  if (auto error = sampling.validate(model_config.vocab_size)) {
    // The engine names request fields (top_p); the flag spelling is --top-p.
    std::string flag = error->param;
    std::replace(flag.begin(), flag.end(), '_', '-');
    throw usage_error(command, "--" + flag + ": " + error->message);
  }
  const auto ids = prompt_ids(tok, flags);
  const auto max_len = static_cast<std::int64_t>(ids.size()) + flags.max_tokens;
  if (model_config.max_position_embeddings > 0 && max_len > model_config.max_position_embeddings)
    throw usage_error(command, "prompt (" + std::to_string(ids.size()) + " tokens) plus --max-tokens " +
                                   std::to_string(flags.max_tokens) + " exceeds the model's " +
                                   std::to_string(model_config.max_position_embeddings) + " positions");
  // One request: the whole prompt in one step, then one token per step, in a pool just big enough.
  cluster.scheduler.max_num_seqs = 1;
  cluster.scheduler.max_model_len = static_cast<std::uint32_t>(max_len);
  cluster.scheduler.max_num_batched_tokens = std::max<std::uint32_t>(cluster.scheduler.max_num_batched_tokens,
                                                                     static_cast<std::uint32_t>(ids.size()));
  std::ostringstream plan;
  const auto stack = build_serving_stack(cluster, tok, plan);
  actors::local_runtime runtime(make_serving_layout(*stack), stack->engine_config, &tok, nullptr, 1, stack->layout, stack->plan_ahead);
  log_memory_plan(*stack, runtime.kv_pool(), plan);
  if (!flags.config_file.empty()) std::cerr << plan.str();

  auto sink = std::make_shared<stdout_sink>();
  auto finished = sink->done.get_future();
  const auto start = std::chrono::steady_clock::now();
  caf::anon_send(runtime.scheduler(), actors::submit_atom::value, actors::submission{0, ids, sampling, sink});
  finished.wait();
  const auto end = std::chrono::steady_clock::now();
  runtime.shutdown();
  std::cout << std::endl;
  if (!sink->failure.empty()) throw std::runtime_error(sink->failure);

  // The first output token comes from the prefill; every later one costs a decode step.
  const auto first = sink->first_token_at.value_or(end);
  const double prefill_seconds = std::chrono::duration<double>(first - start).count();
  const double decode_seconds = std::chrono::duration<double>(end - first).count();
  const auto num_decode_steps = sink->num_output == 0 ? 0 : sink->num_output - 1;
  std::fprintf(stderr, "prefill: %zu tokens in %.3f s (%.1f tok/s)\n", ids.size(), prefill_seconds,
               ids.size() / std::max(prefill_seconds, 1e-9));
  std::fprintf(stderr, "decode: %zu tokens in %.3f s (%.1f tok/s), finish_reason %s, devices %s\n", num_decode_steps,
               decode_seconds, num_decode_steps / std::max(decode_seconds, 1e-9), sink->finish_reason.c_str(),
               stack->layout.c_str());
  return 0;
}

}  // namespace

command_runner add_generate_command(CLI::App& command) {
  auto flags = std::make_shared<generate_flags>();
  flags->sampling.temperature = 0.8;  // GLM-4's generation_config defaults
  flags->sampling.top_p = 0.8;
  command.add_option("--model", flags->model_dir, "Checkpoint directory (config.json, safetensors, tokenizer); overrides [model] path")
      ->check(CLI::ExistingDirectory);
  command.add_option("--config", flags->config_file, "cluster.toml: run on its stages and devices through the actor runtime")
      ->check(CLI::ExistingFile);
  command.add_option("--prompt", flags->prompt, "Prompt text")->required();
  command.add_flag("--chat", flags->chat, "Wrap the prompt as a user turn of the chat template");
  command.add_option("--system", flags->system, "System message (with --chat)");
  command.add_flag("--no-prefix", flags->no_prefix, "Encode a raw prompt as it is, without GLM-4's [gMASK]<sop> prefix");
  command.add_option("--max-tokens", flags->max_tokens, "Tokens to generate at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--temperature", flags->sampling.temperature, "0 = greedy")->capture_default_str();
  command.add_option("--top-p", flags->sampling.top_p, "Nucleus sampling mass")->capture_default_str();
  command.add_option("--top-k", flags->sampling.top_k, "0 = off")->capture_default_str();
  command.add_option("--min-p", flags->sampling.min_p, "0 = off")->capture_default_str();
  command.add_option("--repetition-penalty", flags->sampling.repetition_penalty, "1 = off")->capture_default_str();
  command.add_option("--seed", flags->sampling.seed, "Sampling seed (default: random)");
  command.add_flag("--ignore-eos", flags->ignore_eos, "Keep generating past end-of-reply tokens");
  command.add_option("--threads", flags->threads, "CPU threads per CPU rank (0 = all)")->check(CLI::NonNegativeNumber);
  return [flags, &command] { return run_generate(command, *flags); };
}

}  // namespace glm4::cli
