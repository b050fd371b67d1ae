// Host emulation of cub::BlockScan (exclusive sums) for kernels compiled by device_emulation.hpp.
#pragma once

#include "tests/kernels/emulated_cuda/cub/block/block_shared_slots.hpp"

namespace cub {

template <class T, int BlockThreads>
class BlockScan {
 public:
  using TempStorage = glm4::emulated_cuda::block_slots<T, BlockThreads>;

  explicit BlockScan(TempStorage& storage) : storage_(storage) {}

  void ExclusiveSum(T mine, T& exclusive) {
    T total;
    ExclusiveSum(mine, exclusive, total);
  }

  void ExclusiveSum(T mine, T& exclusive, T& total) {
    const unsigned self = storage_.publish(mine);
    T running{};
    for (unsigned i = 0; i < storage_.count(); ++i) {
      if (i == self) exclusive = running;
      running = running + storage_.value(i);
    }
    total = running;
  }

 private:
  TempStorage& storage_;
};

}  // namespace cub
