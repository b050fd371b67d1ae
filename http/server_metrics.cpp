// The glm4_* metric set.
#include "http/server_metrics.hpp"

namespace glm4::http {

std::vector<double> time_to_first_token_buckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}

std::vector<double> inter_token_latency_buckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> request_latency_buckets() {
  return {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

server_metrics::server_metrics(metrics_registry& registry)
    : requests_running(registry.add_gauge("glm4_requests_running", "Requests whose sequences are running.")),
      requests_waiting(registry.add_gauge("glm4_requests_waiting", "Requests waiting to be scheduled.")),
      kv_cache_usage_ratio(registry.add_gauge("glm4_kv_cache_usage_ratio", "Fraction of KV cache blocks in use.")),
      prompt_tokens_total(registry.add_counter("glm4_prompt_tokens_total", "Prompt tokens of finished requests.")),
      generation_tokens_total(registry.add_counter("glm4_generation_tokens_total", "Generated tokens.")),
      time_to_first_token(registry.add_histogram("glm4_time_to_first_token_seconds",
                                                 "Seconds from arrival to the first output token.",
                                                 time_to_first_token_buckets())),
      inter_token_latency(registry.add_histogram("glm4_inter_token_latency_seconds",
                                                 "Seconds between consecutive output tokens.",
                                                 inter_token_latency_buckets())),
      e2e_request_latency(registry.add_histogram("glm4_e2e_request_latency_seconds",
                                                 "Seconds from arrival to the end of a request.",
                                                 request_latency_buckets())),
      request_queue_time(registry.add_histogram("glm4_request_queue_time_seconds",
                                                "Seconds a request waited before it was first scheduled.",
                                                request_latency_buckets())) {
  const char* help = "Finished requests by finish reason.";
  for (auto reason : {engine::finish_reason::stop, engine::finish_reason::length, engine::finish_reason::abort,
                      engine::finish_reason::error})
    success_[static_cast<int>(reason)] = &registry.add_counter("glm4_request_success_total", help,
                                                               {{"finish_reason", std::string(to_string(reason))}});
}

counter& server_metrics::request_success(engine::finish_reason reason) { return *success_[static_cast<int>(reason)]; }

request_timer::request_timer(server_metrics& metrics, double arrival) : metrics_(metrics), arrival_(arrival) {}

void request_timer::on_scheduled(double now) {
  if (scheduled_) return;  // preemption re-schedules; the queue time is the first wait
  scheduled_ = now;
  metrics_.request_queue_time.observe(now - arrival_);
}

void request_timer::on_tokens(double now, std::int64_t num_tokens) {
  if (num_tokens <= 0) return;
  if (!scheduled_) on_scheduled(now);
  if (!last_token_)
    metrics_.time_to_first_token.observe(now - arrival_);
  else
    metrics_.inter_token_latency.observe((now - *last_token_) / static_cast<double>(num_tokens));
  last_token_ = now;
  metrics_.generation_tokens_total.inc(static_cast<double>(num_tokens));
}

void request_timer::on_finished(double now, engine::finish_reason reason, std::int64_t num_prompt_tokens) {
  if (finished_) return;
  finished_ = true;
  metrics_.e2e_request_latency.observe(now - arrival_);
  metrics_.prompt_tokens_total.inc(static_cast<double>(num_prompt_tokens));
  metrics_.request_success(reason).inc();
}

}  // namespace glm4::http
