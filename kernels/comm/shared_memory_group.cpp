// Collectives through shared memory: ranks publish pointers to their tensors, meet at a barrier,
// and read each other's memory directly. A mutex and condition variable barrier (not spinning):
// CPU ranks already fill every core with their OpenMP teams.
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>

#include "kernels/comm/communicator.hpp"

namespace glm4::kernels::comm {
namespace {

class group_state {
 public:
  explicit group_state(int size) : size_(size), inputs_(static_cast<std::size_t>(size)), widths_(static_cast<std::size_t>(size)) {}

  int size() const { return size_; }

  /// Returns when every rank has arrived; throws comm_aborted when the group is or gets aborted.
  void barrier() {
    std::unique_lock lock(mutex_);
    if (aborted_) throw comm_aborted(*aborted_);
    const std::uint64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      wake_.notify_all();
      return;
    }
    wake_.wait(lock, [&] { return generation_ != generation || aborted_; });
    if (generation_ == generation) throw comm_aborted(*aborted_);
  }

  void abort(const std::string& why) {
    std::lock_guard lock(mutex_);
    if (!aborted_) aborted_ = why;
    wake_.notify_all();
  }

  // Written by their own rank before a barrier, read by all after it.
  std::vector<const float*> inputs_;
  std::vector<std::int64_t> widths_;
  std::vector<float> sum_;  // the all-reduce result; sized by rank 0 between barriers

 private:
  int size_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::uint64_t generation_ = 0;
  int arrived_ = 0;
  std::optional<std::string> aborted_;
};

void expect_f32(const tensor& t, const char* what) {
  if (t.type != dtype::f32) throw std::invalid_argument(std::string("shared-memory collective: ") + what + " must be F32, got " + describe(t));
}

class shared_memory_communicator : public communicator {
 public:
  shared_memory_communicator(std::shared_ptr<group_state> group, int rank) : group_(std::move(group)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }

  void all_reduce_sum(tensor& x) override {
    expect_f32(x, "all_reduce_sum input");
    if (size() == 1) return;
    const std::int64_t count = x.numel();
    group_->inputs_[static_cast<std::size_t>(rank_)] = x.as<float>();
    group_->widths_[static_cast<std::size_t>(rank_)] = count;
    if (rank_ == 0) group_->sum_.resize(static_cast<std::size_t>(count));
    group_->barrier();
    for (std::int64_t width : group_->widths_)
      if (width != count) {
        abort("all_reduce_sum: ranks passed different element counts");
        group_->barrier();  // throws
      }
    // Rank r adds up its contiguous chunk of the elements over all ranks, in rank order.
    const std::int64_t chunk = (count + size() - 1) / size();
    const std::int64_t begin = std::min(count, rank_ * chunk), end = std::min(count, begin + chunk);
    float* sum = group_->sum_.data();
    for (std::int64_t i = begin; i < end; ++i) {
      float total = group_->inputs_[0][i];
      for (int r = 1; r < size(); ++r) total += group_->inputs_[static_cast<std::size_t>(r)][i];
      sum[i] = total;
    }
    group_->barrier();  // every chunk is summed; nobody reads the inputs any more
    std::memcpy(x.data, sum, static_cast<std::size_t>(count) * sizeof(float));
    group_->barrier();  // every rank has its copy before sum_ is reused
  }

  void all_gather_columns(const tensor& local, tensor& full) override {
    expect_f32(local, "all_gather_columns local part");
    expect_f32(full, "all_gather_columns result");
    if (local.rank() != 2 || full.rank() != 2 || local.dim(0) != full.dim(0))
      throw std::invalid_argument("all_gather_columns: local " + describe(local) + " and full " + describe(full) +
                                  " must be 2-D with the same rows");
    const std::int64_t rows = local.dim(0), width = local.dim(1), full_width = full.dim(1);
    group_->inputs_[static_cast<std::size_t>(rank_)] = local.as<float>();
    group_->widths_[static_cast<std::size_t>(rank_)] = width;
    group_->barrier();
    std::int64_t total = 0;
    for (std::int64_t w : group_->widths_) total += w;
    if (total != full_width) {
      abort("all_gather_columns: the ranks' widths add up to " + std::to_string(total) + ", the result has " +
            std::to_string(full_width) + " columns");
      group_->barrier();  // throws
    }
    std::int64_t column = 0;
    for (int r = 0; r < size(); ++r) {
      const std::int64_t w = group_->widths_[static_cast<std::size_t>(r)];
      const float* from = group_->inputs_[static_cast<std::size_t>(r)];
      for (std::int64_t row = 0; row < rows; ++row)
        std::memcpy(full.as<float>() + row * full_width + column, from + row * w, static_cast<std::size_t>(w) * sizeof(float));
      column += w;
    }
    group_->barrier();  // every rank has copied before a local part changes
  }

  void abort(const std::string& why) override { group_->abort(why); }

 private:
  std::shared_ptr<group_state> group_;
  int rank_;
};

}  // namespace

std::vector<std::shared_ptr<communicator>> make_shared_memory_group(int size) {
  if (size < 1) throw std::invalid_argument("make_shared_memory_group: size must be at least 1");
  auto group = std::make_shared<group_state>(size);
  std::vector<std::shared_ptr<communicator>> members;
  for (int rank = 0; rank < size; ++rank) members.push_back(std::make_shared<shared_memory_communicator>(group, rank));
  return members;
}

}  // namespace glm4::kernels::comm
