// glm4-actor serve: the OpenAI-compatible server. The HTTP port opens first (health answers 503
// "loading"), then the model loads and the scheduler actor starts; SIGINT/SIGTERM stop it.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <iostream>

#include "actors/device_layout.hpp"
#include "actors/local_runtime.hpp"
#include "config/cluster_config.hpp"
#include "http/http_server.hpp"
#include "model/checkpoint/config_parser.hpp"
#include "tools/cli/cli_support.hpp"
#include "tools/cli/serving_stack.hpp"

namespace glm4::cli {
namespace {

struct serve_flags {
  std::string config_file;
  std::string model_dir;
  std::optional<std::string> host;
  std::optional<int> port;
  std::vector<std::string> api_keys;
  std::optional<std::string> api_key_file;
  std::optional<std::string> served_model_name;
  std::optional<int> threads;
  std::optional<std::int64_t> max_model_len;
  std::optional<int> max_num_seqs;
  std::optional<int> max_queued_requests;
  std::optional<std::string> dtype;
  std::optional<std::string> kv_cache_dtype;
  int http_threads = 2;
};

// --dtype / --kv-cache-dtype as [model] dtype / kv_cache_dtype reads them.
config::model_dtype parse_dtype_flag(const CLI::App& command, const std::string& flag, const std::string& value) {
  const auto parsed = config::parse_model_dtype(value);
  if (!parsed) throw usage_error(command, flag + ": unknown dtype '" + value + "' " + std::string(config::model_dtype_choices));
  return *parsed;
}

config::cluster_config resolve_config(const CLI::App& command, const serve_flags& flags) {
  config::cluster_config config;
  if (!flags.config_file.empty())
    config = config::load_cluster_config(flags.config_file);
  else
    config.file = "command line";
  if (!flags.model_dir.empty()) config.model.path = flags.model_dir;
  if (config.model.path.empty()) throw usage_error(command, "--model DIR or --config FILE (with [model] path) is required");
  if (flags.host) config.server.host = *flags.host;
  if (flags.port) config.server.port = static_cast<std::uint16_t>(*flags.port);
  if (!flags.api_keys.empty()) config.server.api_keys = flags.api_keys;
  if (flags.api_key_file) config.server.api_key_file = *flags.api_key_file;
  if (flags.served_model_name) config.model.served_name = *flags.served_model_name;
  if (flags.max_model_len) config.scheduler.max_model_len = static_cast<std::uint32_t>(*flags.max_model_len);
  if (flags.max_num_seqs) config.scheduler.max_num_seqs = static_cast<std::uint32_t>(*flags.max_num_seqs);
  if (flags.max_queued_requests) config.server.max_queued_requests = static_cast<std::uint32_t>(*flags.max_queued_requests);
  if (flags.dtype) config.model.dtype = parse_dtype_flag(command, "--dtype", *flags.dtype);
  if (flags.kv_cache_dtype) config.model.kv_cache_dtype = parse_dtype_flag(command, "--kv-cache-dtype", *flags.kv_cache_dtype);
  if (flags.threads) {
    if (config.stages.empty()) {  // threads only mean something on the CPU
      config::stage_config cpu_stage;
      cpu_stage.devices.push_back(config::device_spec{});
      config.stages.push_back(std::move(cpu_stage));
    }
    for (auto& stage : config.stages)  // per rank, on every CPU stage
      if (stage.kind() == config::device_kind::cpu) stage.num_threads = static_cast<std::uint32_t>(*flags.threads);
  }
  if (config.model.served_name.empty()) {
    auto path = config.model.path;
    if (!path.has_filename()) path = path.parent_path();
    config.model.served_name = path.filename().string();
  }
  return config;
}

http::api_keys load_keys(const config::cluster_config& config) {
  std::vector<std::string> keys = config.server.api_keys;
  if (config.server.api_key_file) {
    const auto from_file = http::api_keys::load_file(*config.server.api_key_file);
    keys.insert(keys.end(), from_file.keys().begin(), from_file.keys().end());
  }
  return http::api_keys(keys);
}

int run_serve(const CLI::App& command, const serve_flags& flags) {
  const config::cluster_config config = resolve_config(command, flags);
  // Caught from the start, so a signal at any point (even while loading) shuts down cleanly.
  boost::asio::io_context signal_io;
  boost::asio::signal_set signals(signal_io, SIGINT, SIGTERM);
  signals.async_wait([](const boost::system::error_code&, int) {});

  const auto tokenizer = model::tokenizer::load(config.model.tokenizer.value_or(config.model.path));
  const model::model_config model_config = model::load_model_config(config.model.path);

  http::server_options options;
  options.host = config.server.host;
  options.port = config.server.port;
  options.num_threads = static_cast<std::size_t>(std::max(flags.http_threads, 1));
  if (config.server.request_timeout_s && *config.server.request_timeout_s > 0)
    options.request_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(*config.server.request_timeout_s * 1000.0));
  http::request_limits limits;
  limits.vocab_size = model_config.vocab_size;
  limits.served_models = {config.model.served_name};
  http::server_context context(options, limits, load_keys(config), tokenizer,
                               configured_max_model_len(config, model_config));
  context.board.publish(actors::engine_status{false, "loading"});

  http::http_server server(context);
  server.start();
  std::cerr << "glm4-actor serve: listening on http://" << options.host << ":" << server.port() << " (loading "
            << config.model.path.string() << ")" << std::endl;

  const auto stack = build_serving_stack(config, tokenizer, std::cerr);
  actors::local_runtime runtime(make_serving_layout(*stack), stack->engine_config, &tokenizer, &context.board,
                                config.server.max_queued_requests, stack->layout, stack->plan_ahead);
  log_memory_plan(*stack, runtime.kv_pool(), std::cerr);
  context.set_scheduler(runtime.scheduler(), runtime.kv_pool().max_model_len);
  std::cout << "glm4-actor serve: ready: model \"" << config.model.served_name << "\" at http://" << options.host << ":"
            << server.port() << "/v1" << (context.keys.empty() ? "" : " (API key required)") << std::endl;

  signal_io.run();  // until SIGINT or SIGTERM

  std::cerr << "glm4-actor serve: shutting down" << std::endl;
  server.stop();
  context.clear_scheduler();
  runtime.shutdown();
  return 0;
}

}  // namespace

command_runner add_serve_command(CLI::App& command) {
  auto flags = std::make_shared<serve_flags>();
  command.add_option("--config", flags->config_file, "cluster.toml: model, server, scheduler and device layout")
      ->check(CLI::ExistingFile);
  command.add_option("--model", flags->model_dir, "Checkpoint directory (overrides [model] path)")
      ->check(CLI::ExistingDirectory);
  command.add_option("--host", flags->host, "Address to listen on (default 127.0.0.1)");
  command.add_option("--port", flags->port, "Port to listen on (default 8000; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  command.add_option("--api-key", flags->api_keys, "Accept this key as 'Authorization: Bearer KEY' (repeatable)");
  command.add_option("--api-key-file", flags->api_key_file, "File of accepted keys, one per line")
      ->check(CLI::ExistingFile);
  command.add_option("--served-model-name", flags->served_model_name, "The model name clients send and /v1/models lists");
  command.add_option("--threads", flags->threads, "CPU threads per CPU rank (0 = all)")->check(CLI::NonNegativeNumber);
  command.add_option("--max-model-len", flags->max_model_len, "Prompt plus output tokens of one request at most")
      ->check(CLI::PositiveNumber);
  command.add_option("--max-num-seqs", flags->max_num_seqs, "Sequences one step runs at most")->check(CLI::PositiveNumber);
  command.add_option("--max-queued-requests", flags->max_queued_requests,
                     "Requests that may wait for their first step; more get 429 (default 256)")
      ->check(CLI::PositiveNumber);
  command.add_option("--dtype", flags->dtype, "Weight storage type: auto (the checkpoint's), bfloat16, float16, float32 "
                                             "(overrides [model] dtype)");
  command.add_option("--kv-cache-dtype", flags->kv_cache_dtype,
                     "KV cache type: auto (F32 on CPUs, the weights' type on GPUs), bfloat16, float16, float32 "
                     "(overrides [model] kv_cache_dtype)");
  command.add_option("--http-threads", flags->http_threads, "Threads serving HTTP connections")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return [flags, &command] { return run_serve(command, *flags); };
}

}  // namespace glm4::cli
