// A CPU backend that keeps run_recorded's contract the way CUDA graphs do, so that the CPU suite
// checks what a GPU would: the first call under a key runs the ops and records them; later calls
// replay the recorded ops with the arguments they had then (tensors by address, scalars by value)
// and never call `ops` again. While recording it refuses what a stream capture refuses (host
// copies, allocation, sampling, synchronisation), and a replay that would touch a buffer freed
// since its recording throws instead of reading freed memory.
#pragma once

#include <memory>

#include "kernels/backend.hpp"

namespace glm4::test {

class replaying_backend;

/// A replaying backend over the CPU backend with num_threads threads.
std::unique_ptr<replaying_backend> make_replaying_backend(int num_threads = 1);

class replaying_backend : public kernels::backend {
 public:
  /// Recordings made so far (forget_recordings drops them).
  virtual std::size_t num_recordings() const = 0;
  /// Replays so far, over the backend's life.
  virtual std::size_t num_replays() const = 0;
};

}  // namespace glm4::test
