// NCCL communicators over the ranks' own streams; see nccl_group.hpp.
#include "kernels/cuda/nccl_group.hpp"

#include <stdexcept>
#include <string>

#if GLM4_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <variant>

#include "kernels/cuda/cuda_check.hpp"

// Nonblocking communicators (ncclInProgress, ncclConfig_t) came with NCCL 2.14.
#define GLM4_NCCL_NONBLOCKING (NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0))
#endif

namespace glm4::kernels::cuda {

#if GLM4_HAVE_NCCL
namespace {

void nccl_check(ncclResult_t status, const char* call) {
  if (status != ncclSuccess) throw std::runtime_error(std::string(call) + " failed: " + ncclGetErrorString(status));
}

#define NCCL_CHECK(call) nccl_check((call), #call)

// A call on a nonblocking communicator may return ncclInProgress while NCCL carries it out; its
// final status then comes from ncclCommGetAsyncError. join_nccl_group makes its communicators
// blocking once every rank is in (whose calls return their final status at once), and keeps a
// nonblocking one only when that split fails. `given_up` ends the wait (a group abort).
template <class GivenUp>
ncclResult_t settled(ncclComm_t comm, ncclResult_t status, GivenUp given_up) {
#if GLM4_NCCL_NONBLOCKING
  while (status == ncclInProgress) {
    if (given_up()) return ncclInvalidUsage;
    std::this_thread::yield();
    if (const ncclResult_t queried = ncclCommGetAsyncError(comm, &status); queried != ncclSuccess) return queried;
  }
#else
  (void)comm;
  (void)given_up;
#endif
  return status;
}

// What the ranks of one group in this process share: their comms, so that one abort reaches all
// of them (ranks in other processes see their collectives fail).
// Collectives are enqueued without a lock: a rank blocked in one (waiting for a dead peer) must
// not keep abort() from reaching it. An abort that races with a collective being enqueued on
// another thread may hand NCCL an aborted comm; the stage is going down then anyway.
struct group_state {
  std::vector<ncclComm_t> comms;
  std::atomic<bool> is_aborted{false};
  std::mutex mutex;  // guards comms (ranks join one by one), reason and the abort itself
  std::string reason;

  ~group_state() {
    if (is_aborted) return;
    for (ncclComm_t comm : comms) {
#if GLM4_NCCL_NONBLOCKING
      // A nonblocking communicator flushes its work before it may be destroyed; a peer that is
      // gone would keep that from ending, so it gets a few seconds and is then aborted.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      if (settled(comm, ncclCommFinalize(comm), [&] { return std::chrono::steady_clock::now() > deadline; }) !=
          ncclSuccess) {
        ncclCommAbort(comm);
        continue;
      }
#endif
      ncclCommDestroy(comm);
    }
  }

  void add(ncclComm_t comm) {
    std::lock_guard lock(mutex);
    comms.push_back(comm);
    if (is_aborted) ncclCommAbort(comm);
  }

  void abort(const std::string& why) {
    std::lock_guard lock(mutex);
    if (is_aborted) return;
    reason = why;
    is_aborted = true;
    for (ncclComm_t comm : comms) ncclCommAbort(comm);  // kernels waiting on a peer end; their streams report it
  }

  void throw_if_aborted() {
    if (!is_aborted) return;
    std::lock_guard lock(mutex);
    throw comm::comm_aborted(reason);
  }
};

// Ends a group call however the calls inside it went: NCCL's group depth is per thread, and a
// group left open would hold back every later NCCL call of this (CAF worker) thread.
class group_call {
 public:
  group_call() { nccl_check(ncclGroupStart(), "ncclGroupStart"); }
  group_call(const group_call&) = delete;
  group_call& operator=(const group_call&) = delete;
  ~group_call() {
    if (open_) ncclGroupEnd();
  }
  ncclResult_t end() {
    open_ = false;
    return ncclGroupEnd();
  }

 private:
  bool open_ = true;
};

void expect_f32(const tensor& t, const char* what) {
  if (t.type != dtype::f32) throw std::invalid_argument(std::string("nccl collective: ") + what + " must be F32, got " + describe(t));
}

class nccl_communicator final : public comm::communicator {
 public:
  nccl_communicator(std::shared_ptr<group_state> group, ncclComm_t comm, int rank, int size, cuda_backend& backend)
      : group_(std::move(group)), comm_(comm), rank_(rank), size_(size), backend_(backend) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  device_kind memory() const override { return device_kind::cuda; }

  void all_reduce_sum(tensor& x) override {
    expect_f32(x, "all_reduce_sum input");
    group_->throw_if_aborted();
    backend_.make_current();
    // NCCL's all-reduce ends with every rank holding the same result, bit for bit.
    settle(ncclAllReduce(x.data, x.data, static_cast<std::size_t>(x.numel()), ncclFloat, ncclSum, comm_, stream()),
           "ncclAllReduce");
  }

  void gather_columns(const tensor& local, tensor* full) override {
    expect_f32(local, "gather_columns local part");
    if (local.rank() != 2) throw std::invalid_argument("gather_columns: the local part " + describe(local) + " must be 2-D");
    if ((rank_ == 0) != (full != nullptr)) throw std::invalid_argument("gather_columns: rank 0, and only rank 0, passes the result");
    group_->throw_if_aborted();
    backend_.make_current();
    const std::vector<std::int32_t> widths = all_widths(static_cast<std::int32_t>(local.dim(1)));
    const std::int64_t rows = local.dim(0);
    std::int64_t total = 0, received = 0;
    for (std::int32_t w : widths) total += w;
    if (full && (full->rank() != 2 || full->dim(0) != rows || full->dim(1) != total)) {
      abort("gather_columns: the ranks' parts (" + std::to_string(rows) + " rows, " + std::to_string(total) +
            " columns in all) do not make up the result " + describe(*full));
      group_->throw_if_aborted();
    }
    for (int r = 1; r < size(); ++r) received += rows * widths[static_cast<std::size_t>(r)];
    if (rank_ == 0 && received > 0 && (staging_.numel() < received)) staging_ = backend_.alloc(dtype::f32, {received});
    group_call call;
    if (rank_ != 0) {
      NCCL_CHECK(ncclSend(local.data, static_cast<std::size_t>(local.numel()), ncclFloat, 0, comm_, stream()));
    } else {
      std::int64_t offset = 0;
      for (int r = 1; r < size(); ++r) {
        const std::int64_t count = rows * widths[static_cast<std::size_t>(r)];
        NCCL_CHECK(ncclRecv(staging_.as<float>() + offset, static_cast<std::size_t>(count), ncclFloat, r, comm_, stream()));
        offset += count;
      }
    }
    settle(call.end(), "ncclGroupEnd");
    if (rank_ != 0) return;
    // Side by side: rank r's (rows, w_r) block lands at column offset sum(w_0..w_{r-1}).
    const std::size_t pitch = static_cast<std::size_t>(total) * sizeof(float);
    std::int64_t column = 0, offset = 0;
    for (int r = 0; r < size(); ++r) {
      const std::int64_t w = widths[static_cast<std::size_t>(r)];
      const float* from = r == 0 ? local.as<float>() : staging_.as<float>() + offset;
      if (r > 0) offset += rows * w;
      if (w > 0 && rows > 0)
        CUDA_CHECK(cudaMemcpy2DAsync(full->as<float>() + column, pitch, from, static_cast<std::size_t>(w) * sizeof(float),
                                     static_cast<std::size_t>(w) * sizeof(float), static_cast<std::size_t>(rows),
                                     cudaMemcpyDeviceToDevice, stream()));
      column += w;
    }
  }

  void broadcast_host(std::span<std::int32_t> values) override {
    group_->throw_if_aborted();
    if (size() == 1 || values.empty()) return;
    backend_.make_current();
    tensor buffer = backend_.alloc(dtype::i32, {static_cast<std::int64_t>(values.size())});
    if (rank_ == 0) backend_.upload(buffer, values.data());
    settle(ncclBroadcast(buffer.data, buffer.data, values.size(), ncclInt32, 0, comm_, stream()), "ncclBroadcast");
    backend_.download(buffer, values.data());  // waits for the stream
  }

  void abort(const std::string& why) override { group_->abort(why); }

 private:
  cudaStream_t stream() const { return backend_.stream(); }

  void settle(ncclResult_t status, const char* call) {
    status = settled(comm_, status, [this] { return group_->is_aborted.load(); });
    group_->throw_if_aborted();
    nccl_check(status, call);
  }

  // Every rank's column count: the vocabulary split may be uneven, and only rank 0 lays them out.
  std::vector<std::int32_t> all_widths(std::int32_t mine) {
    tensor widths = backend_.alloc(dtype::i32, {size(), 1});
    tensor own = view_rows(widths, rank_, 1);
    backend_.upload(own, &mine);
    settle(ncclAllGather(own.data, widths.data, 1, ncclInt32, comm_, stream()), "ncclAllGather");
    std::vector<std::int32_t> host(static_cast<std::size_t>(size()));
    backend_.download(widths, host.data());
    return host;
  }

  std::shared_ptr<group_state> group_;
  ncclComm_t comm_;
  int rank_;
  int size_;
  cuda_backend& backend_;
  tensor staging_;  // rank 0: the other ranks' parts of gather_columns
};

}  // namespace

bool have_nccl() { return true; }

std::vector<std::shared_ptr<comm::communicator>> make_nccl_group(std::span<cuda_backend* const> backends) {
  auto group = std::make_shared<group_state>();
  std::vector<int> devices;
  for (const cuda_backend* backend : backends) devices.push_back(backend->device());
  group->comms.resize(backends.size());
  NCCL_CHECK(ncclCommInitAll(group->comms.data(), static_cast<int>(devices.size()), devices.data()));
  std::vector<std::shared_ptr<comm::communicator>> members;
  for (std::size_t r = 0; r < backends.size(); ++r)
    members.push_back(std::make_shared<nccl_communicator>(group, group->comms[r], static_cast<int>(r),
                                                          static_cast<int>(backends.size()), *backends[r]));
  return members;
}

namespace {

// How long a rank waits in join_nccl_group for the rest of its group.
constexpr auto join_timeout = std::chrono::minutes(5);

// The group state of each id some rank of this process joined: while any of them lives, and for
// good once aborted, so that a rank arriving after a failed one learns of it instead of waiting.
class local_groups {
 public:
  std::shared_ptr<group_state> of(const std::vector<std::uint8_t>& id) {
    std::lock_guard lock(mutex_);
    std::weak_ptr<group_state>& entry = groups_[std::string(id.begin(), id.end())];
    std::shared_ptr<group_state> group = entry.lock();
    if (!group) {
      group = std::make_shared<group_state>();
      entry = group;
    }
    return group;
  }

  void keep_aborted(std::shared_ptr<group_state> group) {
    std::lock_guard lock(mutex_);
    aborted_.push_back(std::move(group));  // its comms are aborted already: nothing to destroy at exit
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::weak_ptr<group_state>> groups_;
  std::vector<std::shared_ptr<group_state>> aborted_;
};

local_groups& joined_groups() {
  static local_groups instance;
  return instance;
}

}  // namespace

std::vector<std::uint8_t> make_nccl_group_id() {
  ncclUniqueId id;
  NCCL_CHECK(ncclGetUniqueId(&id));
  return std::vector<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(id.internal),
                                   reinterpret_cast<const std::uint8_t*>(id.internal) + sizeof id.internal);
}

#if GLM4_NCCL_NONBLOCKING && NCCL_VERSION_CODE >= NCCL_VERSION(2, 18, 0)
// The same ranks in a blocking communicator (a collective: every rank splits). On a nonblocking one
// every collective may return ncclInProgress and be launched from NCCL's own thread, which costs a
// thread hand-off per collective and does not mix well with graph capture; the nonblocking one only
// served to give up on ranks that never came. `comm` is finalized and destroyed either way; a rank
// whose split fails gets the reason back instead of a communicator, and fails its join (its peers
// then fail too, as they do when a rank never joins), so no two ranks go on with different ones.
std::variant<ncclComm_t, std::string> blocking_twin(ncclComm_t comm, int rank,
                                                    std::chrono::steady_clock::time_point deadline,
                                                    const group_state& group) {
  const auto given_up = [&] { return group.is_aborted || std::chrono::steady_clock::now() > deadline; };
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 1;
  ncclComm_t twin = nullptr;
  ncclResult_t status = ncclCommSplit(comm, 0, rank, &twin, &config);
  if (status == ncclInProgress) status = settled(twin != nullptr ? twin : comm, status, given_up);
  if (status != ncclSuccess || twin == nullptr) {
    if (twin != nullptr) ncclCommAbort(twin);
    ncclCommAbort(comm);
    return std::string("ncclCommSplit into a blocking communicator: ") +
           (given_up() ? "gave up waiting for the other ranks" : ncclGetErrorString(status));
  }
  if (settled(comm, ncclCommFinalize(comm), given_up) == ncclSuccess) ncclCommDestroy(comm);
  else ncclCommAbort(comm);
  return twin;
}
#endif

std::shared_ptr<comm::communicator> join_nccl_group(cuda_backend& backend, const comm::group_ticket& ticket) {
  // The ranks of this process that join with this id share one abort: a rank that fails to join
  // aborts it, which releases the others from waiting for it.
  std::shared_ptr<group_state> group = joined_groups().of(ticket.id);
  group->throw_if_aborted();  // a rank of this process failed to join already
  const std::string who = "rank " + std::to_string(ticket.rank) + " of " + std::to_string(ticket.size);
  const auto fail = [&](const std::string& why) {
    group->abort(who + " could not join its NCCL group: " + why);
    joined_groups().keep_aborted(group);
    group->throw_if_aborted();
  };
  ncclUniqueId id;
  if (ticket.id.size() != sizeof id.internal)
    fail("an NCCL group id has " + std::to_string(sizeof id.internal) + " bytes, the ticket's has " +
         std::to_string(ticket.id.size()));
  if (ticket.size < 1 || ticket.rank < 0 || ticket.rank >= ticket.size) fail("that rank is not in the group");
  std::memcpy(id.internal, ticket.id.data(), sizeof id.internal);
  try {
    backend.make_current();
  } catch (const std::exception& error) {
    fail(error.what());
  }
  ncclComm_t comm = nullptr;
#if GLM4_NCCL_NONBLOCKING
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // so that a rank whose peers never come can give up
  ncclResult_t status = ncclCommInitRankConfig(&comm, ticket.size, id, ticket.rank, &config);
  const auto deadline = std::chrono::steady_clock::now() + join_timeout;
  while (status == ncclInProgress) {
    const bool late = std::chrono::steady_clock::now() > deadline;
    if (late || group->is_aborted) {
      ncclCommAbort(comm);
      if (late)
        fail("waited " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(join_timeout).count()) +
             " s for the other ranks to join (is every rank's process up, and can its host reach this one?)");
      group->throw_if_aborted();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (const ncclResult_t queried = ncclCommGetAsyncError(comm, &status); queried != ncclSuccess) status = queried;
  }
#else
  const ncclResult_t status = ncclCommInitRank(&comm, ticket.size, id, ticket.rank);  // waits for every rank, however long
#endif
  if (status != ncclSuccess) {
    if (comm) ncclCommAbort(comm);
    fail(ncclGetErrorString(status));
  }
#if GLM4_NCCL_NONBLOCKING && NCCL_VERSION_CODE >= NCCL_VERSION(2, 18, 0)
  auto twin = blocking_twin(comm, ticket.rank, deadline, *group);
  if (const auto* why = std::get_if<std::string>(&twin)) fail(*why);
  comm = std::get<ncclComm_t>(twin);
#endif
  group->add(comm);
  return std::make_shared<nccl_communicator>(std::move(group), comm, ticket.rank, ticket.size, backend);
}

#else

bool have_nccl() { return false; }

namespace {

[[noreturn]] void throw_no_nccl() {
  throw std::runtime_error("this glm4-actor was built without NCCL (nccl.h and libnccl were not found next to the CUDA "
                           "toolkit), so a stage cannot split layers over GPUs; use one GPU per stage");
}

}  // namespace

std::vector<std::shared_ptr<comm::communicator>> make_nccl_group(std::span<cuda_backend* const>) { throw_no_nccl(); }
std::vector<std::uint8_t> make_nccl_group_id() { throw_no_nccl(); }
std::shared_ptr<comm::communicator> join_nccl_group(cuda_backend&, const comm::group_ticket&) { throw_no_nccl(); }

#endif

}  // namespace glm4::kernels::cuda
