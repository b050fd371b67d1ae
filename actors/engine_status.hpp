// What the scheduler actor publishes after every step for /health and /metrics to read from other
// threads without asking it (a request would wait behind a running step).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

namespace glm4::actors {

struct engine_status {
  bool is_ready = false;
  std::string not_ready_reason = "loading";  // why it is not ready (loading, a device down)
  std::int64_t num_running = 0;   // requests with a scheduled choice
  std::int64_t num_waiting = 0;   // requests still queued
  double kv_cache_usage = 0.0;    // referenced KV blocks over all blocks, [0, 1]
  std::int64_t num_steps = 0;
  std::int64_t num_prefix_hit_tokens = 0;
  std::int64_t num_preemptions = 0;
};

/// A mutex-guarded snapshot: one writer (the scheduler actor), any number of readers.
class status_board {
 public:
  void publish(engine_status status) {
    {
      std::lock_guard lock(mutex_);
      status_ = std::move(status);
    }
    changed_.notify_all();
  }
  /// Waits until `ready(status)` holds or `timeout` passes; the last status either way.
  template <class Predicate>
  engine_status wait_for(Predicate ready, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return ready(status_); });
    return status_;
  }
  engine_status read() const {
    std::lock_guard lock(mutex_);
    return status_;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  engine_status status_;
};

}  // namespace glm4::actors
