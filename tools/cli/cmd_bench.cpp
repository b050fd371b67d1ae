// glm4-actor bench: in-process serving benchmark over the engine. Random-token prompts (with an
// optional shared system prefix) are kept `concurrency` in flight, closed loop; it reports output
// throughput, time to first token and inter-token latency.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "actors/device_layout.hpp"
#include "actors/local_runtime.hpp"
#include "engine/llm_engine.hpp"
#include "engine/local_executor.hpp"
#include "kernels/backend.hpp"
#include "model/checkpoint/checkpoint_loader.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "config/device_spec.hpp"
#include "tools/cli/cli_support.hpp"
#include "tools/cli/serving_stack.hpp"

#ifdef GLM4_HAVE_CUDA
#include "kernels/cuda/cuda_backend.hpp"
#endif

namespace glm4::cli {
namespace {

using clock_type = std::chrono::steady_clock;

struct bench_flags {
  std::string model_dir;
  int num_prompts = 32;
  int concurrency = 16;
  int input_len = 128;
  int output_len = 128;
  int shared_prefix_len = 0;
  bool no_prefix_caching = false;
  bool json = false;
  bool through_actors = false;
  std::string plan_ahead = "auto";
  std::string device = "cpu";
  std::string cuda_graphs = "off";
  std::string kv_cache_dtype = "auto";
  std::string sampling = "auto";
  double temperature = 0.0;
  double top_p = 1.0;
  int logprobs = -1;  // -1: none; N >= 0: logprobs with N top_logprobs
  int threads = 0;
  int tp = 1;
  int pp = 1;
  int num_blocks = 0;
  int max_num_batched_tokens = 2048;
  std::uint32_t seed = 0;
};

struct request_timing {
  clock_type::time_point submitted;
  std::optional<clock_type::time_point> first, last;
  std::vector<double> gaps_ms;
  std::int64_t num_output = 0;
};

struct bench_result {
  double seconds = 0;
  std::int64_t num_output = 0, num_prompt = 0;
  std::vector<double> ttft_ms, later_ttft_ms, itl_ms;
  engine::engine_stats stats;
};

double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

std::vector<std::vector<engine::token_id>> make_prompts(const bench_flags& flags, std::int64_t vocab) {
  std::mt19937 rng(flags.seed);
  // Ids below GLM-4's special tokens, so prompts are ordinary text.
  std::uniform_int_distribution<engine::token_id> id(0, static_cast<engine::token_id>(std::min<std::int64_t>(vocab, 150000) - 1));
  std::vector<engine::token_id> prefix(static_cast<std::size_t>(flags.shared_prefix_len));
  for (auto& t : prefix) t = id(rng);
  std::vector<std::vector<engine::token_id>> prompts;
  for (int i = 0; i < flags.num_prompts; ++i) {
    auto prompt = prefix;
    for (int j = 0; j < flags.input_len; ++j) prompt.push_back(id(rng));
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

// Where requests go: straight into the engine, or through the scheduler and device actors.
class request_driver {
 public:
  virtual ~request_driver() = default;
  virtual void submit(engine::request_id id, const std::vector<engine::token_id>& prompt,
                      const engine::sampling_params& params) = 0;
  /// Blocks until some events exist; returns them with the time they arrived.
  virtual std::pair<clock_type::time_point, std::vector<engine::request_output>> next_events() = 0;
};

class engine_driver : public request_driver {
 public:
  explicit engine_driver(engine::llm_engine& engine) : engine_(engine) {}
  void submit(engine::request_id id, const std::vector<engine::token_id>& prompt,
              const engine::sampling_params& params) override {
    if (auto reason = engine_.add_request(id, prompt, params)) throw std::runtime_error("request refused: " + *reason);
  }
  std::pair<clock_type::time_point, std::vector<engine::request_output>> next_events() override {
    auto events = engine_.step();
    return {clock_type::now(), std::move(events)};
  }

 private:
  engine::llm_engine& engine_;
};

// Every request's sink stamps its events on arrival and queues them for the bench thread.
class actor_driver : public request_driver {
 public:
  explicit actor_driver(caf::actor scheduler) : scheduler_(std::move(scheduler)), inbox_(std::make_shared<inbox>()) {}
  void submit(engine::request_id id, const std::vector<engine::token_id>& prompt,
              const engine::sampling_params& params) override {
    caf::anon_send(scheduler_, actors::submit_atom::value,
                   actors::submission{id, prompt, params, std::make_shared<inbox_sink>(inbox_)});
  }
  std::pair<clock_type::time_point, std::vector<engine::request_output>> next_events() override {
    std::unique_lock lock(inbox_->mutex);
    inbox_->arrived.wait(lock, [&] { return !inbox_->items.empty(); });
    auto item = std::move(inbox_->items.front());
    inbox_->items.pop_front();
    if (!item.rejection.empty()) throw std::runtime_error("request refused: " + item.rejection);
    return {item.at, std::move(item.events)};
  }

 private:
  struct inbox {
    struct item {
      clock_type::time_point at;
      std::vector<engine::request_output> events;
      std::string rejection;
    };
    std::mutex mutex;
    std::condition_variable arrived;
    std::deque<item> items;
    void push(item x) {
      {
        std::lock_guard lock(mutex);
        items.push_back(std::move(x));
      }
      arrived.notify_one();
    }
  };
  struct inbox_sink : actors::request_sink {
    explicit inbox_sink(std::shared_ptr<inbox> to) : to(std::move(to)) {}
    void on_rejected(actors::rejection reason) override { to->push({clock_type::now(), {}, reason.message}); }
    void on_accepted() override {}
    void on_scheduled(clock_type::time_point) override {}
    void on_events(std::vector<engine::request_output> events) override {
      to->push({clock_type::now(), std::move(events), {}});
    }
    std::shared_ptr<inbox> to;
  };

  caf::actor scheduler_;
  std::shared_ptr<inbox> inbox_;
};

// Closed loop: a new request enters as soon as one finishes.
bench_result run_requests(request_driver& driver, const std::vector<std::vector<engine::token_id>>& prompts,
                          const engine::sampling_params& params, int concurrency, engine::request_id first_id) {
  std::vector<request_timing> timings(prompts.size());
  std::size_t next = 0, num_finished = 0;
  int in_flight = 0;
  auto submit = [&] {
    timings[next].submitted = clock_type::now();
    driver.submit(first_id + next, prompts[next], params);
    ++next;
    ++in_flight;
  };
  const auto start = clock_type::now();
  while (next < prompts.size() && in_flight < concurrency) submit();
  while (num_finished < prompts.size()) {
    const auto [now, events] = driver.next_events();
    for (const auto& e : events) {
      request_timing& t = timings[e.request - first_id];
      if (!e.tokens.empty()) {
        if (!t.first)
          t.first = now;
        else
          t.gaps_ms.push_back(ms_between(*t.last, now));
        t.last = now;
        t.num_output += std::ssize(e.tokens);
      }
      if (e.finish) {
        --in_flight;
        ++num_finished;
      }
    }
    while (next < prompts.size() && in_flight < concurrency) submit();
  }
  bench_result result;
  result.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  for (std::size_t i = 0; i < timings.size(); ++i) {
    const request_timing& t = timings[i];
    result.num_output += t.num_output;
    result.num_prompt += std::ssize(prompts[i]);
    if (!t.first) continue;
    result.ttft_ms.push_back(ms_between(t.submitted, *t.first));
    if (i > 0) result.later_ttft_ms.push_back(result.ttft_ms.back());
    result.itl_ms.insert(result.itl_ms.end(), t.gaps_ms.begin(), t.gaps_ms.end());
  }
  return result;
}

void print_result(const bench_flags& flags, const bench_result& r, const std::string& backend) {
  const double output_rate = static_cast<double>(r.num_output) / r.seconds;
  const double total_rate = static_cast<double>(r.num_output + r.num_prompt) / r.seconds;
  if (flags.json) {
    std::printf(
        "{\"num_prompts\": %d, \"concurrency\": %d, \"input_len\": %d, \"output_len\": %d, \"shared_prefix_len\": %d, "
        "\"prefix_caching\": %s, \"backend\": \"%s\", \"duration_s\": %.3f, \"output_tokens\": %lld, "
        "\"output_tok_per_s\": %.3f, \"total_tok_per_s\": %.3f, \"ttft_ms_p50\": %.3f, \"ttft_ms_p99\": %.3f, "
        "\"ttft_later_ms_p50\": %.3f, \"itl_ms_p50\": %.3f, \"itl_ms_p99\": %.3f, \"prefix_hit_tokens\": %lld, "
        "\"preemptions\": %lld, \"steps\": %lld}\n",
        flags.num_prompts, flags.concurrency, flags.input_len, flags.output_len, flags.shared_prefix_len,
        flags.no_prefix_caching ? "false" : "true", backend.c_str(), r.seconds, static_cast<long long>(r.num_output),
        output_rate, total_rate, percentile(r.ttft_ms, 50), percentile(r.ttft_ms, 99), percentile(r.later_ttft_ms, 50),
        percentile(r.itl_ms, 50), percentile(r.itl_ms, 99), static_cast<long long>(r.stats.num_prefix_hit_tokens),
        static_cast<long long>(r.stats.num_preemptions), static_cast<long long>(r.stats.num_steps));
    return;
  }
  std::printf("bench: %d prompts, concurrency %d, input %d (+%d shared prefix), output %d, prefix caching %s, backend %s\n",
              flags.num_prompts, flags.concurrency, flags.input_len, flags.shared_prefix_len, flags.output_len,
              flags.no_prefix_caching ? "off" : "on", backend.c_str());
  std::printf("duration:          %.3f s (%lld steps)\n", r.seconds, static_cast<long long>(r.stats.num_steps));
  std::printf("output tok/s:      %.2f\n", output_rate);
  std::printf("total tok/s:       %.2f (prompt + output)\n", total_rate);
  std::printf("TTFT ms:           p50 %.1f  p99 %.1f  (later requests p50 %.1f)\n", percentile(r.ttft_ms, 50),
              percentile(r.ttft_ms, 99), percentile(r.later_ttft_ms, 50));
  std::printf("inter-token ms:    p50 %.1f  p99 %.1f\n", percentile(r.itl_ms, 50), percentile(r.itl_ms, 99));
  std::printf("prefix cache hits: %lld tokens, preemptions %lld\n", static_cast<long long>(r.stats.num_prefix_hit_tokens),
              static_cast<long long>(r.stats.num_preemptions));
}

int run_bench(const CLI::App& command, const bench_flags& flags) {
  const auto checkpoint = model::load_checkpoint(flags.model_dir);
  const auto tok = model::tokenizer::load(flags.model_dir);
  const std::int64_t seq_len = std::int64_t{flags.shared_prefix_len} + flags.input_len + flags.output_len;
  if (checkpoint.config.max_position_embeddings > 0 && seq_len > checkpoint.config.max_position_embeddings)
    throw usage_error(command, "--shared-prefix-len + --input-len + --output-len (" + std::to_string(seq_len) +
                                   ") exceeds the model's " + std::to_string(checkpoint.config.max_position_embeddings) +
                                   " positions");
  engine::engine_config config;
  config.scheduler.block_size = 16;
  const std::int64_t blocks_per_seq = (seq_len + 15) / 16;
  config.scheduler.num_blocks = flags.num_blocks > 0
                                    ? flags.num_blocks
                                    : static_cast<std::int32_t>(blocks_per_seq * (flags.concurrency + 1) + 16);
  config.scheduler.enable_prefix_caching = !flags.no_prefix_caching;
  config.scheduler.max_num_batched_tokens = flags.max_num_batched_tokens;
  config.scheduler.max_num_seqs = std::max(flags.concurrency, 1);
  config.scheduler.max_model_len = seq_len;
  config.eos_token_ids = checkpoint.generation.eos_token_ids;
  if (config.eos_token_ids.empty()) config.eos_token_ids = tok.end_of_reply_ids();
  config.vocab_size = checkpoint.config.vocab_size;

  // CPU ranks: tp per stage, pp stages; the threads are split over a stage's ranks, which run
  // together (stages take turns). Or one GPU.
  const bool sharded = flags.tp > 1 || flags.pp > 1;
  const auto device = flags.device == "cpu" ? std::optional<config::device_spec>(config::device_spec{})
                                            : config::parse_device(flags.device);
  if (!device) throw usage_error(command, "--device: '" + flags.device + "' is not cpu or cuda:N");
  const bool on_gpu = device->kind == config::device_kind::cuda;
  if (on_gpu && sharded) throw usage_error(command, "--tp and --pp run CPU ranks; leave --device at cpu with them");
  if (flags.cuda_graphs == "on" && !on_gpu) throw usage_error(command, "--cuda-graphs applies to --device cuda:N");
  if (flags.sampling != "auto" && (flags.through_actors || sharded))
    throw usage_error(command, "--sampling picks where the in-process engine samples; leave it at auto through actors");
  const auto kv_dtype = config::parse_model_dtype(flags.kv_cache_dtype);
  if (!kv_dtype)
    throw usage_error(command, "--kv-cache-dtype: unknown dtype '" + flags.kv_cache_dtype + "' " +
                                   std::string(config::model_dtype_choices));
  const std::optional<kernels::dtype> kv_type = storage_dtype(*kv_dtype);
  const int total_threads = flags.threads > 0 ? flags.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int rank_threads = sharded ? std::max(1, total_threads / flags.tp) : flags.threads;
  // As serve decides: one stage, and plan_ahead_pays.
  const int computing_threads = sharded ? rank_threads * flags.tp : total_threads;
  const bool plan_ahead = flags.plan_ahead == "on" ||
                          (flags.plan_ahead == "auto" && flags.pp == 1 &&
                           plan_ahead_pays(on_gpu, static_cast<unsigned>(computing_threads), std::thread::hardware_concurrency()));
  std::vector<model::stage_shape> stages;
  for (const auto& layers : model::split_layers(checkpoint.config.num_layers, flags.pp)) stages.push_back({layers, flags.tp});
  auto ranks = model::build_sharded_layout(checkpoint.config, checkpoint.weights, stages,
                                           [&](std::size_t, std::int64_t) -> std::unique_ptr<kernels::backend> {
                                             if (!on_gpu) return kernels::make_cpu_backend(rank_threads);
#ifdef GLM4_HAVE_CUDA
                                             return kernels::make_cuda_backend(device->index);
#else
                                             throw std::runtime_error("this glm4-actor was built without CUDA; --device cuda needs nvcc at build time");
#endif
                                           });
  for (auto& stage : ranks)
    for (model::rank_model& rank : stage) {
      rank.model->record_decode_steps(flags.cuda_graphs == "on");
      if (kv_type) rank.model->set_kv_cache_dtype(*kv_type);
    }
  const std::string layout = actors::describe_layout(ranks) + (flags.cuda_graphs == "on" ? ", CUDA graphs" : "") +
                             ", KV cache " + std::string(kernels::dtype_name(ranks[0][0].model->kv_cache_dtype()));

  engine::sampling_params params;
  params.temperature = flags.temperature;
  params.top_p = flags.top_p;
  params.logprobs = flags.logprobs >= 0;
  params.top_logprobs = std::max(flags.logprobs, 0);
  params.seed = flags.seed;
  params.ignore_eos = true;
  params.max_tokens = flags.output_len;
  params.min_tokens = flags.output_len;

  // Warm-up (scratch allocation, page faults on the weights); its prompt shares nothing.
  bench_flags warm_flags = flags;
  warm_flags.num_prompts = 1;
  warm_flags.shared_prefix_len = 0;
  warm_flags.input_len = 8;
  warm_flags.seed = flags.seed + 1;
  auto warm_params = params;
  warm_params.max_tokens = warm_params.min_tokens = 2;
  const auto warm_prompts = make_prompts(warm_flags, checkpoint.config.vocab_size);
  const auto prompts = make_prompts(flags, checkpoint.config.vocab_size);

  bench_result result;
  auto subtract = [](engine::engine_stats after, const engine::engine_stats& before) {
    after.num_steps -= before.num_steps;
    after.num_prefix_hit_tokens -= before.num_prefix_hit_tokens;
    after.num_preemptions -= before.num_preemptions;
    return after;
  };
  if (!flags.through_actors && !sharded) {
    engine::local_executor executor(*ranks[0][0].model, config.scheduler.num_blocks, config.scheduler.block_size,
                                    config.eos_token_ids);
    if (flags.sampling != "auto")
      executor.set_sampling(flags.sampling == "device" ? engine::sampling_site::device : engine::sampling_site::host);
    engine::llm_engine engine(config, executor, &tok);
    engine_driver driver(engine);
    run_requests(driver, warm_prompts, warm_params, 1, 1u << 30);
    const engine::engine_stats warm_stats = engine.stats();
    result = run_requests(driver, prompts, params, flags.concurrency, 0);
    result.stats = subtract(engine.stats(), warm_stats);
  } else {
    // The serving path without HTTP: scheduler actor -> device actors -> local executors.
    actors::local_runtime runtime(
        actors::make_device_layout(ranks, config.scheduler.num_blocks, config.scheduler.block_size, config.eos_token_ids),
        config, &tok, nullptr, prompts.size() + 1, layout, plan_ahead);
    auto stats_now = [&] {
      caf::scoped_actor self{runtime.system()};
      engine::engine_stats stats;
      self->request(runtime.scheduler(), caf::infinite, actors::status_atom::value)
          .receive([&](const actors::engine_status& s) {
                     stats.num_steps = s.num_steps;
                     stats.num_prefix_hit_tokens = s.num_prefix_hit_tokens;
                     stats.num_preemptions = s.num_preemptions;
                   },
                   [](const caf::error&) {});
      return stats;
    };
    actor_driver driver(runtime.scheduler());
    run_requests(driver, warm_prompts, warm_params, 1, 1u << 30);
    const engine::engine_stats warm_stats = stats_now();
    result = run_requests(driver, prompts, params, flags.concurrency, 0);
    result.stats = subtract(stats_now(), warm_stats);
  }
  const std::string sampling = flags.temperature > 0.0 ? ", temperature " + std::to_string(flags.temperature) +
                                                           " top_p " + std::to_string(flags.top_p)
                                                     : ", greedy";
  const std::string site = (flags.sampling == "auto" ? "" : ", sampled on the " + flags.sampling) +
                           (flags.logprobs >= 0 ? ", logprobs with " + std::to_string(flags.logprobs) + " top" : "");
  print_result(flags, result,
               layout + (flags.through_actors || sharded ? (plan_ahead ? ", through actors, planning ahead" : ", through actors")
                                                         : ", in-process") +
                   sampling + site);
  return 0;
}

}  // namespace

command_runner add_bench_command(CLI::App& command) {
  auto flags = std::make_shared<bench_flags>();
  command.add_option("--model", flags->model_dir, "Checkpoint directory (config.json, safetensors, tokenizer)")
      ->required()
      ->check(CLI::ExistingDirectory);
  command.add_option("--num-prompts", flags->num_prompts, "Requests to run")->check(CLI::PositiveNumber)->capture_default_str();
  command.add_option("--concurrency", flags->concurrency, "Requests in flight at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--input-len", flags->input_len, "Prompt tokens of each request (after the shared prefix)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--output-len", flags->output_len, "Tokens each request generates")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--shared-prefix-len", flags->shared_prefix_len, "Tokens of a system prompt every request starts with")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command.add_flag("--no-prefix-caching", flags->no_prefix_caching, "Disable the KV prefix cache");
  command.add_flag("--json", flags->json, "Print one JSON object instead of text");
  command.add_flag("--through-actors", flags->through_actors,
                   "Run through the scheduler and device actors (serve's path, without HTTP)");
  command.add_option("--plan-ahead", flags->plan_ahead,
                     "Through actors: plan each step while the one before runs (auto: when the threads leave a core free, as serve)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  command.add_option("--device", flags->device, "cpu, or cuda:N to run on that GPU (one rank)")->capture_default_str();
  command.add_option("--temperature", flags->temperature, "Sampling temperature (0: greedy)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command.add_option("--top-p", flags->top_p, "Nucleus sampling mass")->check(CLI::Range(1e-6, 1.0))->capture_default_str();
  command.add_option("--logprobs", flags->logprobs, "Every request asks for logprobs with this many top_logprobs (0 to 20)")
      ->check(CLI::Range(0, 20));
  command.add_option("--sampling", flags->sampling,
                     "In-process: sample with the backend's sample_rows (device, the default: auto) or on the host "
                     "with engine::sampler")
      ->check(CLI::IsMember({"auto", "host", "device"}))
      ->capture_default_str();
  command.add_option("--cuda-graphs", flags->cuda_graphs, "On a GPU: replay decode steps as CUDA graphs")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  command.add_option("--kv-cache-dtype", flags->kv_cache_dtype,
                     "KV cache type, as [model] kv_cache_dtype: auto (F32 on CPUs, the weights' type on GPUs), "
                     "bfloat16, float16, float32")
      ->capture_default_str();
  command.add_option("--threads", flags->threads, "CPU threads in all (0 = all), split over a stage's ranks")
      ->check(CLI::NonNegativeNumber);
  command.add_option("--tp", flags->tp, "Tensor-parallel CPU ranks per stage (implies --through-actors when above 1)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--pp", flags->pp, "Pipeline stages of CPU ranks (implies --through-actors when above 1)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--num-blocks", flags->num_blocks, "KV blocks of 16 tokens (0 = enough for the concurrency)")
      ->check(CLI::NonNegativeNumber);
  command.add_option("--max-num-batched-tokens", flags->max_num_batched_tokens, "Tokens one step computes at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command.add_option("--seed", flags->seed, "Seed of the random prompts")->capture_default_str();
  return [flags, &command] { return run_bench(command, *flags); };
}

}  // namespace glm4::cli
