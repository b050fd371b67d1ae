// Collectives through shared memory: ranks publish pointers to their tensors, meet at a barrier,
// and read each other's memory directly. The barrier spins for a few microseconds, then sleeps
// (a futex through std::atomic::wait): a rank that waits longer is waiting for a slower peer and
// should leave the core to it.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "kernels/comm/communicator.hpp"

namespace glm4::kernels::comm {
namespace {

class group_state {
 public:
  explicit group_state(int size)
      : inputs_(static_cast<std::size_t>(size)), widths_(static_cast<std::size_t>(size)), heights_(static_cast<std::size_t>(size)),
        size_(size) {}

  int size() const { return size_; }

  /// Returns when every rank has arrived; throws comm_aborted when the group is or gets aborted
  /// first. Spins briefly (ranks usually arrive within microseconds of each other), then sleeps
  /// on the state word.
  void barrier() {
    const std::uint64_t entered = state_.load(std::memory_order_acquire);
    if (entered & aborted_bit) throw_aborted();
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == size_) {
      arrived_.store(0, std::memory_order_relaxed);
      state_.fetch_add(1, std::memory_order_release);
      state_.notify_all();
      return;
    }
    // A completed barrier wins over an abort that came after it: the rank's step went through.
    for (int spin = 0;; ++spin) {
      const std::uint64_t now = state_.load(std::memory_order_acquire);
      if ((now & ~aborted_bit) != entered) return;
      if (now & aborted_bit) throw_aborted();
      if (spin < spin_limit)
        pause();
      else
        state_.wait(now, std::memory_order_acquire);
    }
  }

  void abort(const std::string& why) {
    {
      std::lock_guard lock(reason_mutex_);
      if (!reason_) reason_ = why;
    }
    state_.fetch_or(aborted_bit, std::memory_order_release);
    state_.notify_all();
  }

  // Written by their own rank before a barrier, read by all after it.
  std::vector<const float*> inputs_;
  std::vector<std::int64_t> widths_, heights_;
  std::vector<float> sum_;  // the all-reduce result; sized by rank 0 between barriers
  const std::int32_t* broadcast_ = nullptr;  // rank 0's values during broadcast_host

 private:
  static constexpr int spin_limit = 4000;
  // state_: the count of completed barriers, and this bit once the group is aborted.
  static constexpr std::uint64_t aborted_bit = std::uint64_t{1} << 63;

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  [[noreturn]] void throw_aborted() {
    std::lock_guard lock(reason_mutex_);
    throw comm_aborted(*reason_);
  }

  int size_;
  std::atomic<int> arrived_{0};
  std::atomic<std::uint64_t> state_{0};
  std::mutex reason_mutex_;
  std::optional<std::string> reason_;
};

void expect_f32(const tensor& t, const char* what) {
  if (t.type != dtype::f32) throw std::invalid_argument(std::string("shared-memory collective: ") + what + " must be F32, got " + describe(t));
}

class shared_memory_communicator : public communicator {
 public:
  shared_memory_communicator(std::shared_ptr<group_state> group, int rank) : group_(std::move(group)), rank_(rank) {}

  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  device_kind memory() const override { return device_kind::cpu; }

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

  void gather_columns(const tensor& local, tensor* full) override {
    expect_f32(local, "gather_columns local part");
    if (local.rank() != 2) throw std::invalid_argument("gather_columns: the local part " + describe(local) + " must be 2-D");
    if ((rank_ == 0) != (full != nullptr)) throw std::invalid_argument("gather_columns: rank 0, and only rank 0, passes the result");
    const std::int64_t rows = local.dim(0);
    group_->inputs_[static_cast<std::size_t>(rank_)] = local.as<float>();
    group_->widths_[static_cast<std::size_t>(rank_)] = local.dim(1);
    group_->heights_[static_cast<std::size_t>(rank_)] = rows;
    group_->barrier();
    if (full) {
      expect_f32(*full, "gather_columns result");
      std::int64_t total = 0;
      bool same_rows = true;
      for (int r = 0; r < size(); ++r) {
        total += group_->widths_[static_cast<std::size_t>(r)];
        same_rows = same_rows && group_->heights_[static_cast<std::size_t>(r)] == rows;
      }
      if (full->rank() != 2 || full->dim(0) != rows || full->dim(1) != total || !same_rows)
        abort("gather_columns: the ranks' parts (" + std::to_string(rows) + " rows, " + std::to_string(total) +
              " columns in all) do not make up the result " + describe(*full));
      else
        copy_columns_into(*full);
    }
    group_->barrier();  // rank 0 has copied before a local part changes; throws if it aborted
  }

  void broadcast_host(std::span<std::int32_t> values) override {
    if (size() == 1) return;
    const auto count = static_cast<std::int64_t>(values.size());
    group_->widths_[static_cast<std::size_t>(rank_)] = count;
    if (rank_ == 0) group_->broadcast_ = values.data();
    group_->barrier();
    for (std::int64_t width : group_->widths_)
      if (width != count) {
        abort("broadcast_host: ranks passed different element counts");
        group_->barrier();  // throws
      }
    if (rank_ != 0 && count > 0) std::memcpy(values.data(), group_->broadcast_, values.size() * sizeof(std::int32_t));
    group_->barrier();  // every rank has its copy before rank 0's values change
  }

  void abort(const std::string& why) override { group_->abort(why); }

 private:
  void copy_columns_into(tensor& full) const {
    const std::int64_t rows = full.dim(0), full_width = full.dim(1);
    std::int64_t column = 0;
    for (int r = 0; r < size(); ++r) {
      const std::int64_t w = group_->widths_[static_cast<std::size_t>(r)];
      const float* from = group_->inputs_[static_cast<std::size_t>(r)];
      for (std::int64_t row = 0; row < rows; ++row)
        std::memcpy(full.as<float>() + row * full_width + column, from + row * w, static_cast<std::size_t>(w) * sizeof(float));
      column += w;
    }
  }

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

namespace {

// Groups some ranks have joined and others not yet; a group leaves once its last rank joins.
struct pending_group {
  std::vector<std::shared_ptr<communicator>> members;  // a rank's entry is taken (nulled) when it joins
  int num_joined = 0;
};

struct group_registry {
  std::mutex mutex;
  std::map<std::string, pending_group> pending;  // by id, as bytes
  std::uint64_t next_id = 0;
};

group_registry& registry() {
  static group_registry instance;
  return instance;
}

}  // namespace

std::vector<std::uint8_t> make_shared_memory_group_id() {
  group_registry& groups = registry();
  std::lock_guard lock(groups.mutex);
  const std::uint64_t number = groups.next_id++;
  std::vector<std::uint8_t> id(sizeof number);
  std::memcpy(id.data(), &number, sizeof number);
  return id;
}

std::shared_ptr<communicator> join_shared_memory_group(const group_ticket& ticket) {
  if (ticket.size < 1 || ticket.rank < 0 || ticket.rank >= ticket.size)
    throw std::invalid_argument("join_shared_memory_group: rank " + std::to_string(ticket.rank) + " is not in a group of " +
                                std::to_string(ticket.size));
  group_registry& groups = registry();
  std::lock_guard lock(groups.mutex);
  auto [at, made] = groups.pending.try_emplace(std::string(ticket.id.begin(), ticket.id.end()));
  pending_group& group = at->second;
  if (made) group.members = make_shared_memory_group(ticket.size);
  if (std::ssize(group.members) != ticket.size)
    throw std::invalid_argument("join_shared_memory_group: the group has " + std::to_string(group.members.size()) +
                                " ranks, a ticket says " + std::to_string(ticket.size));
  std::shared_ptr<communicator> member = std::move(group.members[static_cast<std::size_t>(ticket.rank)]);
  if (!member) throw std::invalid_argument("join_shared_memory_group: rank " + std::to_string(ticket.rank) + " joined twice");
  if (++group.num_joined == ticket.size) groups.pending.erase(at);
  return member;
}

}  // namespace glm4::kernels::comm
