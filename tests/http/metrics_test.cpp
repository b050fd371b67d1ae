// The registry's Prometheus text output, parsed back line by line, and its thread safety.
#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <thread>

#include "http/metrics.hpp"
#include "http/server_metrics.hpp"

namespace glm4::http {
namespace {

struct sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

struct exposition {
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;
  std::vector<sample> samples;

  const sample& find(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples)
      if (s.name == name && s.labels == labels) return s;
    FAIL("no sample " << name);
    throw;
  }
};

// A strict reader of format 0.0.4: every line is a HELP, a TYPE or a sample, each ends in '\n'.
exposition parse(const std::string& text) {
  REQUIRE((text.empty() || text.back() == '\n'));
  exposition out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0) {
      const auto space = line.find(' ', 7);
      out.help[line.substr(7, space - 7)] = line.substr(space + 1);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      const auto space = line.find(' ', 7);
      const std::string name = line.substr(7, space - 7);
      REQUIRE(out.type.count(name) == 0);  // one TYPE per family
      out.type[name] = line.substr(space + 1);
    } else {
      sample s;
      std::size_t pos = line.find_first_of("{ ");
      REQUIRE(pos != std::string::npos);
      s.name = line.substr(0, pos);
      if (line[pos] == '{') {
        ++pos;
        while (line[pos] != '}') {
          const auto eq = line.find("=\"", pos);
          REQUIRE(eq != std::string::npos);
          const std::string label = line.substr(pos, eq - pos);
          std::string value;
          pos = eq + 2;
          while (line[pos] != '"') {
            if (line[pos] == '\\') {
              ++pos;
              value += line[pos] == 'n' ? '\n' : line[pos];
            } else {
              value += line[pos];
            }
            ++pos;
          }
          s.labels[label] = value;
          ++pos;
          if (line[pos] == ',') ++pos;
        }
        ++pos;
      }
      REQUIRE(line[pos] == ' ');
      s.value = line.substr(pos + 1);
      REQUIRE_FALSE(s.value.empty());
      out.samples.push_back(s);
    }
  }
  return out;
}

TEST_CASE("counters, gauges and labels render as Prometheus text", "[http][metrics]") {
  metrics_registry registry;
  auto& requests = registry.add_counter("requests_total", "All requests.\nSecond line.");
  auto& ok = registry.add_counter("replies_total", "Replies.", {{"code", "200"}});
  auto& odd = registry.add_counter("replies_total", "Replies.", {{"code", "a\"b\\c\nd"}});
  auto& temperature = registry.add_gauge("temperature", "Degrees.");
  requests.inc();
  requests.inc(2.5);
  requests.inc(-10);  // counters never go down
  ok.inc();
  odd.inc(3);
  temperature.set(-1.25);
  temperature.inc(0.25);
  const std::string text = registry.render();
  CHECK(text ==
        "# HELP requests_total All requests.\\nSecond line.\n"
        "# TYPE requests_total counter\n"
        "requests_total 3.5\n"
        "# HELP replies_total Replies.\n"
        "# TYPE replies_total counter\n"
        "replies_total{code=\"200\"} 1\n"
        "replies_total{code=\"a\\\"b\\\\c\\nd\"} 3\n"
        "# HELP temperature Degrees.\n"
        "# TYPE temperature gauge\n"
        "temperature -1\n");
  const auto parsed = parse(text);
  CHECK(parsed.find("replies_total", {{"code", "a\"b\\c\nd"}}).value == "3");
  CHECK(parsed.type.at("temperature") == "gauge");
}

TEST_CASE("histograms: cumulative buckets, +Inf, _sum and _count", "[http][metrics]") {
  metrics_registry registry;
  auto& latency = registry.add_histogram("latency_seconds", "Latency.", {0.1, 0.5, 1.0}, {{"route", "chat"}});
  for (double v : {0.05, 0.1, 0.3, 0.7, 2.0, 5.0}) latency.observe(v);
  const auto parsed = parse(registry.render());
  CHECK(parsed.type.at("latency_seconds") == "histogram");
  auto bucket = [&](const std::string& le) {
    return parsed.find("latency_seconds_bucket", {{"route", "chat"}, {"le", le}}).value;
  };
  CHECK(bucket("0.1") == "2");  // le is inclusive
  CHECK(bucket("0.5") == "3");
  CHECK(bucket("1") == "4");
  CHECK(bucket("+Inf") == "6");
  CHECK(parsed.find("latency_seconds_count", {{"route", "chat"}}).value == "6");
  CHECK(std::stod(parsed.find("latency_seconds_sum", {{"route", "chat"}}).value) == Approx(8.15));
}

TEST_CASE("bad registrations are refused", "[http][metrics]") {
  metrics_registry registry;
  registry.add_counter("a_total", "A.");
  CHECK_THROWS_AS(registry.add_counter("a_total", "A."), std::invalid_argument);
  CHECK_THROWS_AS(registry.add_gauge("a_total", "A."), std::invalid_argument);
  CHECK_THROWS_AS(registry.add_counter("1bad", "x"), std::invalid_argument);
  CHECK_THROWS_AS(registry.add_counter("bad-name", "x"), std::invalid_argument);
  CHECK_THROWS_AS(registry.add_counter("ok", "x", {{"bad label", "v"}}), std::invalid_argument);
  CHECK_THROWS_AS(registry.add_histogram("h", "x", {1.0}, {{"le", "v"}}), std::invalid_argument);
  CHECK_THROWS_AS(registry.add_histogram("h", "x", {1.0, 0.5}), std::invalid_argument);
  CHECK(format_metric_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_metric_value(std::nan("")) == "NaN");
  CHECK(format_metric_value(0.001) == "0.001");
}

TEST_CASE("concurrent updates lose nothing", "[http][metrics]") {
  metrics_registry registry;
  auto& c = registry.add_counter("c_total", "C.");
  auto& h = registry.add_histogram("h_seconds", "H.", {0.5});
  constexpr int num_threads = 4;
  constexpr int num_updates = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < num_threads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < num_updates; ++i) {
        c.inc();
        h.observe(t % 2 == 0 ? 0.25 : 1.0);
        if (i % 5000 == 0) (void)registry.render();
      }
    });
  for (auto& thread : threads) thread.join();
  const auto parsed = parse(registry.render());
  CHECK(parsed.find("c_total").value == std::to_string(num_threads * num_updates));
  CHECK(parsed.find("h_seconds_bucket", {{"le", "0.5"}}).value == std::to_string(num_threads / 2 * num_updates));
  CHECK(parsed.find("h_seconds_count").value == std::to_string(num_threads * num_updates));
}

TEST_CASE("the glm4 metric set and a request's timings", "[http][metrics]") {
  metrics_registry registry;
  server_metrics metrics(registry);
  metrics.requests_running.set(2);
  metrics.requests_waiting.set(5);
  metrics.kv_cache_usage_ratio.set(0.5);
  request_timer timer(metrics, 100.0);
  timer.on_scheduled(100.5);
  timer.on_scheduled(101.0);  // re-scheduled after preemption: not a second queue time
  timer.on_tokens(100.75, 1);
  timer.on_tokens(100.85, 2);
  timer.on_finished(102.0, engine::finish_reason::stop, 12);
  timer.on_finished(103.0, engine::finish_reason::stop, 12);  // once only
  const auto parsed = parse(registry.render());
  for (const char* name : {"glm4_requests_running", "glm4_requests_waiting", "glm4_kv_cache_usage_ratio"})
    CHECK(parsed.type.at(name) == "gauge");
  for (const char* name : {"glm4_prompt_tokens_total", "glm4_generation_tokens_total", "glm4_request_success_total"})
    CHECK(parsed.type.at(name) == "counter");
  for (const char* name : {"glm4_time_to_first_token_seconds", "glm4_inter_token_latency_seconds",
                           "glm4_e2e_request_latency_seconds", "glm4_request_queue_time_seconds"})
    CHECK(parsed.type.at(name) == "histogram");
  CHECK(parsed.find("glm4_requests_waiting").value == "5");
  CHECK(parsed.find("glm4_kv_cache_usage_ratio").value == "0.5");
  CHECK(parsed.find("glm4_prompt_tokens_total").value == "12");
  CHECK(parsed.find("glm4_generation_tokens_total").value == "3");
  CHECK(parsed.find("glm4_request_success_total", {{"finish_reason", "stop"}}).value == "1");
  CHECK(parsed.find("glm4_request_success_total", {{"finish_reason", "error"}}).value == "0");
  CHECK(parsed.find("glm4_request_queue_time_seconds_count").value == "1");
  CHECK(parsed.find("glm4_request_queue_time_seconds_sum").value == "0.5");
  CHECK(parsed.find("glm4_time_to_first_token_seconds_bucket", {{"le", "0.75"}}).value == "1");
  CHECK(parsed.find("glm4_time_to_first_token_seconds_bucket", {{"le", "0.5"}}).value == "0");
  // Two tokens 0.1 s after the first: one ITL sample of 0.05 s each.
  CHECK(parsed.find("glm4_inter_token_latency_seconds_count").value == "1");
  CHECK(std::stod(parsed.find("glm4_inter_token_latency_seconds_sum").value) == Approx(0.05));
  CHECK(parsed.find("glm4_e2e_request_latency_seconds_sum").value == "2");
}

}  // namespace
}  // namespace glm4::http
