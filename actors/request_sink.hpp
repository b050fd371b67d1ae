// Where the scheduler actor sends what happens to one request. Called on the scheduler's thread:
// an implementation hands the work to its own executor (an HTTP session posts to its strand)
// and returns at once.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/request_output.hpp"

namespace glm4::actors {

struct rejection {
  enum class kind {
    invalid,     // the request can never run (a parameter, a prompt longer than the model allows)
    overloaded,  // the waiting queue is full: try again later
    unavailable  // the runtime cannot serve now (a device is down)
  };
  kind why = kind::invalid;
  std::string message;
};

class request_sink {
 public:
  virtual ~request_sink() = default;

  /// The request never entered the queue; nothing else follows.
  virtual void on_rejected(rejection reason) = 0;
  /// The request is queued: everything else about it arrives as events.
  virtual void on_accepted() = 0;
  /// The request left the queue for its first step (once), which started at `step_start`.
  virtual void on_scheduled(std::chrono::steady_clock::time_point step_start) = 0;
  /// Events of one step, in order; the last one of each choice carries its finish reason.
  virtual void on_events(std::vector<engine::request_output> events) = 0;
};

using request_sink_ptr = std::shared_ptr<request_sink>;

}  // namespace glm4::actors
