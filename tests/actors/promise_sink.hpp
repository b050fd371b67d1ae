// A request sink for actor tests: futures a test can wait on (first events, the end) instead of
// sleeping, and everything the scheduler sent.
#pragma once

#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "actors/request_sink.hpp"

namespace glm4::actors {

// Resolves `first_events` at the first tokens and `done` at the request's end (or rejection).
struct promise_sink : request_sink {
  std::mutex mutex;
  std::vector<engine::token_id> tokens;
  std::optional<engine::finish_reason> finish;
  std::string message;
  std::optional<rejection> rejected;
  std::promise<void> first_events, done;
  bool has_events = false;

  void on_rejected(rejection reason) override {
    std::lock_guard lock(mutex);
    rejected = std::move(reason);
    done.set_value();
  }
  void on_accepted() override {}
  void on_scheduled(std::chrono::steady_clock::time_point) override {}
  void on_events(std::vector<engine::request_output> events) override {
    std::lock_guard lock(mutex);
    for (const auto& e : events) {
      for (const auto& t : e.tokens) tokens.push_back(t.token);
      if (e.finish) {
        finish = *e.finish;
        message = e.message;
        done.set_value();
      }
    }
    if (!has_events) {
      has_events = true;
      first_events.set_value();
    }
  }
};

}  // namespace glm4::actors
