#include "tests/kernels/emulated_cuda/race_detection.hpp"

#include <vector>

// ThreadSanitizer's interface, declared weak: the symbols resolve only where -fsanitize=thread linked its
// runtime, and are null elsewhere.
extern "C" {
void* __tsan_get_current_fiber() __attribute__((weak));
void* __tsan_create_fiber(unsigned flags) __attribute__((weak));
void __tsan_destroy_fiber(void* fiber) __attribute__((weak));
void __tsan_switch_to_fiber(void* fiber, unsigned flags) __attribute__((weak));
void __tsan_acquire(void* address) __attribute__((weak));
void __tsan_release(void* address) __attribute__((weak));
void __tsan_ignore_thread_begin() __attribute__((weak));
void __tsan_ignore_thread_end() __attribute__((weak));
}

namespace glm4::emulated_cuda::race_detection {
namespace {

constexpr unsigned switch_without_order = 1;  // __tsan_switch_to_fiber_no_sync

// Creating a record costs far more than a block of threads, so each host thread keeps its own.
class fiber_pool {
 public:
  ~fiber_pool() {
    for (void* fiber : fibers_) __tsan_destroy_fiber(fiber);
  }
  void* at(unsigned slot) {
    while (fibers_.size() <= slot) fibers_.push_back(__tsan_create_fiber(0));
    return fibers_[slot];
  }

 private:
  std::vector<void*> fibers_;
};

thread_local fiber_pool pool;

}  // namespace

bool active() { return __tsan_switch_to_fiber != nullptr; }

namespace {

// Ignores its thread's accesses while alive; ThreadSanitizer wants every ignore ended by the thread's end.
struct host_thread_ignore {
  host_thread_ignore() {
    if (active()) __tsan_ignore_thread_begin();
  }
  ~host_thread_ignore() {
    if (active()) __tsan_ignore_thread_end();
  }
};

}  // namespace

void ignore_host_thread() { thread_local const host_thread_ignore ignore; }

namespace {
const bool main_thread_ignored = (ignore_host_thread(), true);
}  // namespace

void* current_fiber() { return active() ? __tsan_get_current_fiber() : nullptr; }

void* fiber_for_slot(unsigned slot) { return active() ? pool.at(slot) : nullptr; }

void switch_to(void* to, bool ordered) {
  if (active()) __tsan_switch_to_fiber(to, ordered ? 0 : switch_without_order);
}

void arrive(const void* barrier) {
  if (active()) __tsan_release(const_cast<void*>(barrier));
}

void leave(const void* barrier) {
  if (active()) __tsan_acquire(const_cast<void*>(barrier));
}

emulator_work::emulator_work() {
  if (active()) __tsan_ignore_thread_begin();
}

emulator_work::~emulator_work() {
  if (active()) __tsan_ignore_thread_end();
}

}  // namespace glm4::emulated_cuda::race_detection
