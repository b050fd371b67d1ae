// Sampling on the device against engine::sampler: the request's params turned into kernel specs
// (make_device_sampling_batch) and sampled by the CPU backend's sample_rows, which the CUDA
// kernel is compared with in tests/kernels/cuda, must pick the host sampler's token for random
// logits (ties, NaN, infinities, huge values), params and histories.
#include "engine/device_sampling.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>
#include <random>

#include "engine/llm_engine.hpp"
#include "engine/local_executor.hpp"
#include "engine/sampler.hpp"
#include "kernels/backend.hpp"
#include "model/checkpoint/checkpoint_loader.hpp"

namespace glm4::engine {
namespace {

constexpr float inf = std::numeric_limits<float>::infinity();

struct sampling_case {
  std::vector<float> logits;
  sampling_params params;
  std::vector<token_id> prompt, output;
  std::uint64_t seed = 0;

  sequence_sampling_state state() const { return {prompt, output, seed}; }
};

// Logits of the shapes that break samplers: wide and narrow spreads, heavy ties, non-finite values.
std::vector<float> random_logits(std::mt19937& rng, std::int32_t vocab) {
  std::vector<float> logits(static_cast<std::size_t>(vocab));
  const int shape = std::uniform_int_distribution<int>(0, 5)(rng);
  const double scale = std::uniform_real_distribution<double>(0.05, 20.0)(rng);
  std::normal_distribution<double> normal(0.0, scale);
  const int levels = std::uniform_int_distribution<int>(1, 6)(rng);
  for (float& x : logits) {
    switch (shape) {
      case 0: x = static_cast<float>(normal(rng)); break;
      case 1: x = static_cast<float>(std::uniform_int_distribution<int>(0, levels - 1)(rng));  // ties
        break;
      case 2: x = 0.0f; break;  // every token tied
      default: x = static_cast<float>(normal(rng)); break;
    }
  }
  if (shape >= 3) {  // sprinkle values the sampler must sanitize or rank exactly
    const std::vector<float> specials{std::numeric_limits<float>::quiet_NaN(), inf, -inf, -0.0f, 0.0f, 3.0e38f, -3.0e38f,
                                      std::numeric_limits<float>::denorm_min()};
    const int count = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int i = 0; i < count; ++i)
      logits[std::uniform_int_distribution<std::size_t>(0, logits.size() - 1)(rng)] =
          specials[std::uniform_int_distribution<std::size_t>(0, specials.size() - 1)(rng)];
  }
  if (shape == 5)  // everything masked
    for (float& x : logits) x = -inf;
  return logits;
}

sampling_params random_params(std::mt19937& rng, std::int32_t vocab) {
  auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };
  auto real = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  auto id = [&] { return std::uniform_int_distribution<token_id>(0, vocab - 1)(rng); };
  sampling_params p;
  p.temperature = chance(0.25) ? 0.0 : real(0.05, 3.0);
  if (chance(0.4)) p.top_k = std::uniform_int_distribution<std::int32_t>(1, vocab + 2)(rng);
  if (chance(0.5)) p.top_p = chance(0.1) ? 1e-9 : real(0.01, 1.0);
  if (chance(0.3)) p.min_p = chance(0.1) ? 1.0 : real(0.0, 0.5);
  if (chance(0.3)) p.repetition_penalty = real(0.5, 2.0);
  if (chance(0.3)) p.presence_penalty = real(-2.0, 2.0);
  if (chance(0.3)) p.frequency_penalty = real(-2.0, 2.0);
  if (chance(0.3))
    for (int i = 0; i < 3; ++i) p.logit_bias[id()] = static_cast<float>(real(-100.0, 100.0));
  if (chance(0.3)) {
    p.stop_token_ids = {id(), id()};
    p.min_tokens = std::uniform_int_distribution<std::int32_t>(0, 6)(rng);
    p.ignore_eos = chance(0.5);
  }
  return p;
}

sampling_case random_case(std::mt19937& rng, std::int32_t vocab) {
  sampling_case c;
  c.logits = random_logits(rng, vocab);
  c.params = random_params(rng, vocab);
  std::uniform_int_distribution<token_id> id(0, vocab - 1);
  // Sometimes a history covering much of the vocabulary, so penalties move the likely tokens.
  const std::size_t longest = std::bernoulli_distribution(0.3)(rng) ? static_cast<std::size_t>(vocab) : 12;
  c.prompt.resize(std::uniform_int_distribution<std::size_t>(1, longest)(rng));
  for (auto& t : c.prompt) t = id(rng);
  c.output.resize(std::uniform_int_distribution<std::size_t>(0, std::max<std::size_t>(8, longest / 2))(rng));
  for (auto& t : c.output) t = id(rng);
  c.seed = rng();
  return c;
}

std::string describe(const sampling_case& c) {
  const sampling_params& p = c.params;
  return "T=" + std::to_string(p.temperature) + " top_k=" + std::to_string(p.top_k) + " top_p=" +
         std::to_string(p.top_p) + " min_p=" + std::to_string(p.min_p) + " rep=" + std::to_string(p.repetition_penalty) +
         " presence=" + std::to_string(p.presence_penalty) + " frequency=" + std::to_string(p.frequency_penalty) +
         " bias=" + std::to_string(p.logit_bias.size()) + " min_tokens=" + std::to_string(p.min_tokens) +
         " output=" + std::to_string(c.output.size()) + " seed=" + std::to_string(c.seed);
}

// The CPU backend's sample_rows over a batch of cases of one vocabulary size.
std::vector<std::int32_t> sample_on_device(kernels::backend& backend, const std::vector<sampling_case>& cases,
                                           const std::vector<token_id>& eos) {
  const auto vocab = static_cast<std::int64_t>(cases.front().logits.size());
  kernels::tensor logits = backend.alloc(kernels::dtype::f32, {static_cast<std::int64_t>(cases.size()), vocab});
  std::vector<float> host;
  std::vector<row_sampling> rows;
  for (const sampling_case& c : cases) {
    host.insert(host.end(), c.logits.begin(), c.logits.end());
    rows.push_back({&c.params, c.state()});
  }
  backend.upload(logits, host.data());
  const device_sampling_batch batch = make_device_sampling_batch(rows, eos);
  std::vector<std::int32_t> ids(cases.size(), -1);
  backend.sample_rows(ids, logits, batch.rows, batch.edits);
  return ids;
}

}  // namespace

TEST_CASE("the device sampling kernels pick the host sampler's token", "[device_sampling][sampler]") {
  const std::int32_t vocab = GENERATE(1, 2, 7, 300, 4099);
  CAPTURE(vocab);
  std::mt19937 rng(static_cast<std::uint32_t>(vocab) * 7919u);
  const std::vector<token_id> eos{0, vocab - 1};
  const sampler host(eos);
  auto backend = kernels::make_cpu_backend(2);
  const int num_batches = vocab >= 300 ? 60 : 120;
  for (int b = 0; b < num_batches; ++b) {
    std::vector<sampling_case> cases;
    const int num_rows = std::uniform_int_distribution<int>(1, 6)(rng);
    for (int r = 0; r < num_rows; ++r) {
      cases.push_back(random_case(rng, vocab));
      for (int redraw = 0; redraw < 2; ++redraw) {  // the same row with other draws
        cases.push_back(cases.back());
        cases.back().seed = rng();
      }
    }
    const auto ids = sample_on_device(*backend, cases, eos);
    for (std::size_t r = 0; r < cases.size(); ++r) {
      INFO("batch " << b << " row " << r << ": " << describe(cases[r]));
      CHECK(ids[r] == host.sample(cases[r].logits, cases[r].params, cases[r].state()).token);
    }
  }
}

TEST_CASE("top-p keeps tied tokens lowest id first, as the ranked definition does", "[device_sampling][sampler]") {
  // 40 tokens at one logit: top_p 0.5 keeps ids 0..19, and a draw just under 0.5 of the kept
  // mass lands on id 9, one just over on id 10 (a wrong tie rule would keep other ids).
  const std::vector<float> logits(40, 1.0f);
  sampling_params params;
  params.top_p = 0.5;
  auto backend = kernels::make_cpu_backend(1);
  kernels::tensor device_logits = backend->alloc(kernels::dtype::f32, {1, 40});
  backend->upload(device_logits, logits.data());
  for (const auto& [uniform, expected] : std::vector<std::pair<double, std::int32_t>>{{0.0, 0}, {0.49, 9}, {0.51, 10}, {0.999, 19}}) {
    kernels::row_sampling_spec spec;
    spec.top_p = params.top_p;
    spec.uniform = uniform;
    std::vector<std::int32_t> id(1, -1);
    backend->sample_rows(id, device_logits, std::span(&spec, 1), {});
    CHECK(id[0] == expected);
  }
}

TEST_CASE("a row's edits come one per id in id order, the same from a raw prompt as from its distinct ids",
          "[device_sampling]") {
  std::mt19937 rng(5);
  std::uniform_int_distribution<token_id> id(0, 300);
  sampling_params params;
  params.repetition_penalty = 1.3;
  params.presence_penalty = 0.5;
  params.frequency_penalty = 0.25;
  params.logit_bias = {{7, 2.0f}, {40, -1.0f}, {299, 5.0f}};
  params.stop_token_ids = {40, 301};
  params.min_tokens = 100;
  std::vector<token_id> prompt, output;
  for (int i = 0; i < 400; ++i) prompt.push_back(id(rng));
  for (int i = 0; i < 30; ++i) output.push_back(id(rng));
  output.push_back(7);
  output.push_back(7);
  std::vector<token_id> distinct = prompt;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  const std::vector<token_id> eos{301, 302};
  const std::vector<row_sampling> raw{{&params, {prompt, output, 1}}}, tidy{{&params, {distinct, output, 1}}};
  const auto from_raw = make_device_sampling_batch(raw, eos), from_distinct = make_device_sampling_batch(tidy, eos);
  REQUIRE(from_raw.edits.size() == from_distinct.edits.size());
  for (std::size_t i = 0; i < from_raw.edits.size(); ++i) {
    const kernels::token_edit &a = from_raw.edits[i], &b = from_distinct.edits[i];
    CAPTURE(i, a.id);
    CHECK((a.id == b.id && a.bias == b.bias && a.output_count == b.output_count && a.masked == b.masked && a.seen == b.seen));
    if (i > 0) CHECK(from_raw.edits[i - 1].id < a.id);
  }
  // One edit for each id of the prompt, the output, the bias and the masked stop and eos ids; no other.
  std::vector<token_id> every = distinct;
  every.insert(every.end(), output.begin(), output.end());
  for (const auto& [id, bias] : params.logit_bias) every.push_back(id);
  every.insert(every.end(), {40, 301, 302});
  std::sort(every.begin(), every.end());
  every.erase(std::unique(every.begin(), every.end()), every.end());
  std::vector<token_id> edited;
  for (const kernels::token_edit& edit : from_raw.edits) edited.push_back(edit.id);
  CHECK(edited == every);
  // What each id must carry, counted here from the lists themselves.
  for (const kernels::token_edit& edit : from_raw.edits) {
    CAPTURE(edit.id);
    const bool in_prompt = std::binary_search(distinct.begin(), distinct.end(), edit.id);
    const auto count = std::count(output.begin(), output.end(), edit.id);
    CHECK(edit.seen == ((in_prompt || count > 0) ? 1 : 0));
    CHECK(edit.output_count == count);
    CHECK(edit.masked == ((edit.id == 40 || edit.id == 301 || edit.id == 302) ? 1 : 0));
    CHECK(edit.bias == (params.logit_bias.count(edit.id) ? params.logit_bias.at(edit.id) : 0.0f));
  }
  CHECK(from_raw.rows[0].num_edits == static_cast<std::int32_t>(from_raw.edits.size()));
}

TEST_CASE("sample_rows refuses mismatched rows and edits that run past the batch", "[device_sampling]") {
  auto backend = kernels::make_cpu_backend(1);
  kernels::tensor logits = backend->alloc(kernels::dtype::f32, {2, 5});
  std::vector<kernels::row_sampling_spec> specs(2);
  std::vector<std::int32_t> ids(2);
  CHECK_THROWS_WITH(backend->sample_rows(std::span(ids).first(1), logits, specs, {}),
                    Catch::Contains("2 logit rows but 2 specs and 1 ids"));
  specs[1].first_edit = 1;
  specs[1].num_edits = 2;
  const std::vector<kernels::token_edit> edits(2);
  CHECK_THROWS_WITH(backend->sample_rows(ids, logits, specs, edits), Catch::Contains("run past the 2 edits"));
}

TEST_CASE("an engine sampling on the device returns the tokens of host sampling", "[device_sampling][local_executor][model]") {
  const auto model_dir = std::filesystem::path(GLM4_TEST_DATA_DIR) / "models" / "glm-f32";
  const model::checkpoint checkpoint = model::load_checkpoint(model_dir);
  auto backend = kernels::make_cpu_backend(2);
  model::glm4_model forward(checkpoint.config, checkpoint.weights, *backend);
  engine_config config;
  config.scheduler.num_blocks = 64;
  config.scheduler.block_size = 4;
  config.scheduler.max_num_seqs = 8;
  config.scheduler.max_model_len = 128;
  config.eos_token_ids = checkpoint.generation.eos_token_ids;
  config.vocab_size = checkpoint.config.vocab_size;
  std::vector<sampling_params> requests(4);
  requests[0].temperature = 0.0;
  requests[1].top_k = 20;
  requests[1].repetition_penalty = 1.3;
  requests[2].top_p = 0.8;
  requests[2].frequency_penalty = 0.7;
  requests[3].min_p = 0.05;
  requests[3].logprobs = true;  // this row's logits go to the host sampler, the others stay on the device
  requests[3].top_logprobs = 3;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    requests[i].max_tokens = 12;
    requests[i].ignore_eos = true;
    requests[i].seed = 100 + i;
  }
  auto generate = [&](sampling_site site) {
    local_executor executor(forward, config.scheduler.num_blocks, config.scheduler.block_size, config.eos_token_ids);
    CHECK(executor.sampling() == sampling_site::device);  // the default, on the CPU too
    executor.set_sampling(site);
    llm_engine engine(config, executor, nullptr);
    for (std::size_t i = 0; i < requests.size(); ++i)
      REQUIRE_FALSE(engine.add_request(i, {5, 17, 99, 3, static_cast<token_id>(40 + i)}, requests[i]));
    std::map<request_id, std::vector<token_logprob>> tokens;  // with logprobs for request 3
    while (engine.has_unfinished())
      for (const auto& out : engine.step())
        for (const auto& t : out.tokens) {
          tokens[out.request].push_back({t.token, t.logprob.value_or(0.0f)});
          if (out.request == 3) CHECK(t.top_logprobs.size() == 3);
        }
    // The host sampler keeps the step's logits; the device hands back only ids.
    return std::pair{tokens, executor.last_logits().empty()};
  };
  const auto [on_host, device_only_in_host_mode] = generate(sampling_site::host);
  const auto [on_device, device_only] = generate(sampling_site::device);
  CHECK_FALSE(device_only_in_host_mode);
  CHECK(device_only);
  REQUIRE(on_host.size() == requests.size());
  for (const auto& [request, tokens] : on_host) CHECK(tokens.size() == 12u);
  CHECK(on_device == on_host);
}

}  // namespace glm4::engine
