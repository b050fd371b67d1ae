// Storage shared by the emulated CUB block primitives: one slot per thread in raw bytes (so it may sit
// in a union in __shared__ memory, as CUB's TempStorage does).
#pragma once

#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "tests/kernels/emulated_cuda/fiber_block.hpp"

namespace glm4::emulated_cuda {

template <class T>
T poisoned() {
  if constexpr (std::is_floating_point_v<T>) {
    return std::numeric_limits<T>::quiet_NaN();
  } else {
    T value;
    std::memset(static_cast<void*>(&value), 0xA5, sizeof value);
    return value;
  }
}

template <class T, int BlockThreads>
struct block_slots {
  alignas(T) unsigned char bytes[sizeof(T) * BlockThreads];

  /// Stores this thread's value, waits for the whole block, and returns the thread's rank.
  unsigned publish(const T& mine) {
    const dim3& shape = block_dim();
    const unsigned threads = shape.x * shape.y * shape.z;
    if (threads != static_cast<unsigned>(BlockThreads))
      throw std::runtime_error("emulated CUB: BlockThreads differs from the launched block size");
    const uint3& t = thread_index();
    const unsigned self = t.x + shape.x * (t.y + shape.y * t.z);
    std::memcpy(bytes + sizeof(T) * self, &mine, sizeof(T));
    sync_threads();
    return self;
  }
  unsigned count() const { return static_cast<unsigned>(BlockThreads); }
  T value(unsigned i) const {
    T v;
    std::memcpy(static_cast<void*>(&v), bytes + sizeof(T) * i, sizeof(T));
    return v;
  }
};

}  // namespace glm4::emulated_cuda
