// What every session of one server shares: limits, keys, the tokenizer, metrics, the scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "actors/engine_status.hpp"
#include "http/auth.hpp"
#include "http/metrics.hpp"
#include "http/openai_request.hpp"
#include "http/server_metrics.hpp"

namespace glm4::model {
class tokenizer;
}

namespace glm4::http {

struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;          // 0: any free port (tests); http_server::port() tells which
  std::size_t num_threads = 2;        // io_context threads
  std::size_t max_body_bytes = 8u << 20;
  std::uint32_t max_header_bytes = 16u << 10;
  std::chrono::milliseconds read_timeout{30'000};  // a whole request, headers and body, and idle keep-alive
  std::chrono::milliseconds write_timeout{60'000}; // one write to a client that does not read
  std::size_t max_connections = 1024;
  std::size_t max_queued_write_bytes = 4u << 20;   // per stream; beyond it that stream ends
  std::chrono::milliseconds keep_alive_interval{10'000};  // SSE comment while no event is sent
  std::optional<std::chrono::milliseconds> request_timeout;  // a generation still running then ends in error
  std::chrono::seconds retry_after{1};             // 429's Retry-After
};

struct server_context {
  server_context(server_options options, request_limits limits, api_keys keys, const model::tokenizer& tokenizer,
                 std::int64_t max_model_len)
      : options(std::move(options)), limits(std::move(limits)), keys(std::move(keys)), tokenizer(tokenizer),
        max_model_len(max_model_len), metrics(registry) {}

  /// Serving starts: from here on generation routes submit to `actor`, for requests of at most
  /// `model_len` tokens (the KV pool may hold fewer than configured).
  void set_scheduler(caf::actor actor, std::int64_t model_len) {
    scheduler = std::move(actor);
    max_model_len.store(model_len, std::memory_order_relaxed);
    has_scheduler.store(true, std::memory_order_release);
  }
  /// Serving ends (the HTTP threads are stopped): drops the handle, so a detached scheduler's
  /// thread can finish when the actor system shuts down.
  void clear_scheduler() {
    has_scheduler.store(false, std::memory_order_release);
    scheduler = caf::actor{};
  }
  bool is_serving() const { return has_scheduler.load(std::memory_order_acquire); }

  const server_options options;
  const request_limits limits;
  const api_keys keys;
  const model::tokenizer& tokenizer;
  std::atomic<std::int64_t> max_model_len;  // prompt plus output tokens of one request
  const std::int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();

  actors::status_board board;  // written by the scheduler actor
  metrics_registry registry;
  server_metrics metrics;
  std::atomic<std::uint64_t> next_request_id{1};
  std::atomic<std::size_t> num_connections{0};

  caf::actor scheduler;  // set once, before has_scheduler becomes true

 private:
  std::atomic<bool> has_scheduler{false};
};

}  // namespace glm4::http
