// glm4-actor generate: one prompt, no server; streams text to stdout, speed to stderr.
#include <algorithm>
#include <chrono>
#include <iostream>

#include "engine/llm_engine.hpp"
#include "engine/local_executor.hpp"
#include "kernels/backend.hpp"
#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "tools/cli/cli_support.hpp"

namespace glm4::cli {
namespace {

struct generate_flags {
  std::string model_dir;
  std::string prompt;
  std::string system;
  bool chat = false;
  bool no_prefix = false;
  bool ignore_eos = false;
  int max_tokens = 128;
  int threads = 0;
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

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run_generate(const CLI::App& command, const generate_flags& flags) {
  if (!flags.chat && !flags.system.empty()) throw usage_error(command, "--system needs --chat");
  auto sampling = flags.sampling;
  sampling.max_tokens = flags.max_tokens;
  sampling.ignore_eos = flags.ignore_eos;

  const auto checkpoint = model::load_checkpoint(flags.model_dir);
  const auto tok = model::tokenizer::load(flags.model_dir);
  if (auto error = sampling.validate(checkpoint.config.vocab_size)) {
    // The engine names request fields (top_p); the flag spelling is --top-p.
    std::string flag = error->param;
    std::replace(flag.begin(), flag.end(), '_', '-');
    throw usage_error(command, "--" + flag + ": " + error->message);
  }

  const auto ids = prompt_ids(tok, flags);
  const auto max_len = static_cast<std::int64_t>(ids.size()) + flags.max_tokens;
  if (checkpoint.config.max_position_embeddings > 0 && max_len > checkpoint.config.max_position_embeddings)
    throw usage_error(command, "prompt (" + std::to_string(ids.size()) + " tokens) plus --max-tokens " +
                                   std::to_string(flags.max_tokens) + " exceeds the model's " +
                                   std::to_string(checkpoint.config.max_position_embeddings) + " positions");

  auto eos_ids = checkpoint.generation.eos_token_ids;
  if (eos_ids.empty()) eos_ids = tok.end_of_reply_ids();
  // One request through the engine: the whole prompt in one step, then one token per step.
  engine::engine_config config;
  config.scheduler.block_size = 16;
  config.scheduler.num_blocks = static_cast<std::int32_t>((max_len + 15) / 16 + 1);
  config.scheduler.max_num_batched_tokens = static_cast<std::int32_t>(std::max<std::size_t>(ids.size(), 1));
  config.scheduler.max_num_seqs = 1;
  config.scheduler.max_model_len = max_len;
  config.eos_token_ids = eos_ids;
  config.vocab_size = checkpoint.config.vocab_size;

  auto backend = kernels::make_cpu_backend(flags.threads);
  model::glm4_model forward(checkpoint.config, checkpoint.weights, *backend);
  engine::local_executor executor(forward, config.scheduler.num_blocks, config.scheduler.block_size, eos_ids);
  engine::llm_engine engine(config, executor, &tok);
  if (auto reason = engine.add_request(0, ids, sampling)) throw std::runtime_error(*reason);

  std::vector<engine::token_id> output;
  std::string finish_reason = "length";
  double prefill_seconds = 0;
  const auto prefill_start = std::chrono::steady_clock::now();
  auto decode_start = prefill_start;
  while (engine.has_unfinished()) {
    for (const auto& event : engine.step()) {
      for (const auto& token : event.tokens) output.push_back(token.token);
      std::cout << event.text << std::flush;
      if (event.finish) finish_reason = std::string(engine::to_string(*event.finish));
    }
    if (prefill_seconds == 0) {
      prefill_seconds = seconds_since(prefill_start);
      decode_start = std::chrono::steady_clock::now();
    }
  }
  std::cout << std::endl;
  const double decode_seconds = seconds_since(decode_start);

  // The first output token comes from the prefill logits; every later one costs a decode step.
  const auto num_decode_steps = output.empty() ? 0 : output.size() - 1;
  std::fprintf(stderr, "prefill: %zu tokens in %.3f s (%.1f tok/s)\n", ids.size(), prefill_seconds,
               ids.size() / std::max(prefill_seconds, 1e-9));
  std::fprintf(stderr, "decode: %zu tokens in %.3f s (%.1f tok/s), finish_reason %s, backend %s\n",
               num_decode_steps, decode_seconds, num_decode_steps / std::max(decode_seconds, 1e-9),
               finish_reason.c_str(), backend->name().c_str());
  return 0;
}

}  // namespace

command_runner add_generate_command(CLI::App& command) {
  auto flags = std::make_shared<generate_flags>();
  flags->sampling.temperature = 0.8;  // GLM-4's generation_config defaults
  flags->sampling.top_p = 0.8;
  command.add_option("--model", flags->model_dir, "Checkpoint directory (config.json, safetensors, tokenizer)")
      ->required()
      ->check(CLI::ExistingDirectory);
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
  command.add_option("--threads", flags->threads, "CPU threads (0 = all)")->check(CLI::NonNegativeNumber);
  return [flags, &command] { return run_generate(command, *flags); };
}

}  // namespace glm4::cli
