// The glm4_* metrics /metrics exposes, and the per-request clock that feeds the latency histograms.
#pragma once

#include <optional>
#include <vector>

#include "engine/request_output.hpp"
#include "http/metrics.hpp"

namespace glm4::http {

/// vLLM's bucket bounds (seconds), so dashboards built for vLLM read ours unchanged.
std::vector<double> time_to_first_token_buckets();
std::vector<double> inter_token_latency_buckets();
std::vector<double> request_latency_buckets();  // e2e and queue time

class server_metrics {
 public:
  /// Registers every glm4_* metric in registry (which must outlive this).
  explicit server_metrics(metrics_registry& registry);

  gauge& requests_running;
  gauge& requests_waiting;
  gauge& kv_cache_usage_ratio;  // [0, 1]
  counter& prompt_tokens_total;
  counter& generation_tokens_total;
  histogram& time_to_first_token;
  histogram& inter_token_latency;
  histogram& e2e_request_latency;
  histogram& request_queue_time;

  /// glm4_request_success_total{finish_reason="stop"|"length"|"abort"|"error"}.
  counter& request_success(engine::finish_reason reason);

 private:
  counter* success_[4];
};

/// One request's timestamps (seconds on any monotonic clock, passed in so tests need no sleep).
/// Queue time ends when the request is first scheduled; TTFT and e2e start at arrival.
class request_timer {
 public:
  request_timer(server_metrics& metrics, double arrival);

  void on_scheduled(double now);
  /// num_tokens new output tokens arrived at now: call once per engine step with the sum over the
  /// request's choices, or n > 1 would record zero gaps.
  void on_tokens(double now, std::int64_t num_tokens);
  /// Once per request; counts its prompt and output tokens and its finish reason.
  void on_finished(double now, engine::finish_reason reason, std::int64_t num_prompt_tokens);

 private:
  server_metrics& metrics_;
  double arrival_;
  std::optional<double> scheduled_;
  std::optional<double> last_token_;
  bool finished_ = false;
};

}  // namespace glm4::http
