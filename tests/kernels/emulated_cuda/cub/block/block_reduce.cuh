// Host emulation of cub::BlockReduce for kernels compiled by device_emulation.hpp. As in CUB, only
// thread 0 receives the result (the others get a poisoned value), and the storage may be reused only
// after a __syncthreads.
#pragma once

#include <cstring>

#include "tests/kernels/emulated_cuda/cub/block/block_shared_slots.hpp"

namespace cub {

template <class T, int BlockThreads>
class BlockReduce {
 public:
  using TempStorage = glm4::emulated_cuda::block_slots<T, BlockThreads>;

  explicit BlockReduce(TempStorage& storage) : storage_(storage) {}

  template <class Op>
  T Reduce(T mine, Op op) {
    const unsigned self = storage_.publish(mine);
    if (self != 0) return glm4::emulated_cuda::poisoned<T>();
    T total = storage_.value(0);
    for (unsigned i = 1; i < storage_.count(); ++i) total = op(total, storage_.value(i));
    return total;
  }

  T Sum(T mine) {
    return Reduce(mine, [](const T& a, const T& b) { return a + b; });
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
