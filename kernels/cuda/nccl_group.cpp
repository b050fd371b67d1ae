// NCCL communicators over the ranks' own streams; see nccl_group.hpp.
#include "kernels/cuda/nccl_group.hpp"

#include <stdexcept>
#include <string>

#if GLM4_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>

#include "kernels/cuda/cuda_check.hpp"
#endif

namespace glm4::kernels::cuda {

#if GLM4_HAVE_NCCL
namespace {

void nccl_check(ncclResult_t status, const char* call) {
  if (status != ncclSuccess) throw std::runtime_error(std::string(call) + " failed: " + ncclGetErrorString(status));
}

#define NCCL_CHECK(call) nccl_check((call), #call)

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
    if (!is_aborted)
      for (ncclComm_t comm : comms) ncclCommDestroy(comm);
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
    NCCL_CHECK(ncclAllReduce(x.data, x.data, static_cast<std::size_t>(x.numel()), ncclFloat, ncclSum, comm_, stream()));
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
    NCCL_CHECK(ncclGroupStart());
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
    NCCL_CHECK(ncclGroupEnd());
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
    NCCL_CHECK(ncclBroadcast(buffer.data, buffer.data, values.size(), ncclInt32, 0, comm_, stream()));
    backend_.download(buffer, values.data());  // waits for the stream
  }

  void abort(const std::string& why) override { group_->abort(why); }

 private:
  cudaStream_t stream() const { return backend_.stream(); }

  // Every rank's column count: the vocabulary split may be uneven, and only rank 0 lays them out.
  std::vector<std::int32_t> all_widths(std::int32_t mine) {
    tensor widths = backend_.alloc(dtype::i32, {size(), 1});
    tensor own = view_rows(widths, rank_, 1);
    backend_.upload(own, &mine);
    NCCL_CHECK(ncclAllGather(own.data, widths.data, 1, ncclInt32, comm_, stream()));
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

// The group state of each id some rank of this process joined, while any of them lives.
std::shared_ptr<group_state> local_group_of(const std::vector<std::uint8_t>& id) {
  static std::mutex mutex;
  static std::map<std::vector<std::uint8_t>, std::weak_ptr<group_state>> groups;
  std::lock_guard lock(mutex);
  std::weak_ptr<group_state>& entry = groups[id];
  std::shared_ptr<group_state> group = entry.lock();
  if (!group) {
    group = std::make_shared<group_state>();
    entry = group;
  }
  return group;
}

}  // namespace

std::vector<std::uint8_t> make_nccl_group_id() {
  ncclUniqueId id;
  NCCL_CHECK(ncclGetUniqueId(&id));
  return std::vector<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(id.internal),
                                   reinterpret_cast<const std::uint8_t*>(id.internal) + sizeof id.internal);
}

std::shared_ptr<comm::communicator> join_nccl_group(cuda_backend& backend, const comm::group_ticket& ticket) {
  ncclUniqueId id;
  if (ticket.id.size() != sizeof id.internal)
    throw std::invalid_argument("join_nccl_group: an NCCL group id has " + std::to_string(sizeof id.internal) +
                                " bytes, the ticket's has " + std::to_string(ticket.id.size()));
  if (ticket.size < 1 || ticket.rank < 0 || ticket.rank >= ticket.size)
    throw std::invalid_argument("join_nccl_group: rank " + std::to_string(ticket.rank) + " is not in a group of " +
                                std::to_string(ticket.size));
  std::memcpy(id.internal, ticket.id.data(), sizeof id.internal);
  backend.make_current();
  ncclComm_t comm = nullptr;
  NCCL_CHECK(ncclCommInitRank(&comm, ticket.size, id, ticket.rank));
  std::shared_ptr<group_state> group = local_group_of(ticket.id);
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
