// The emulated NCCL's communicators: unique ids, init, split, queries, finalize, destroy and abort.
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_nccl_groups.hpp"
#include "tests/kernels/emulated_cuda/emulated_nccl_meetings.hpp"
#include "tests/kernels/emulated_cuda/emulated_runtime.hpp"

namespace glm4::emulated_cuda::nccl {
namespace {

ncclResult_t blocking_of(const ncclConfig_t* config, const char* call, bool& blocking) {
  blocking = true;
  if (config == nullptr) return ncclSuccess;
  if (config->magic != 0xcafebeef || config->size < offsetof(ncclConfig_t, blocking) + sizeof config->blocking)
    return refuse(ncclInvalidArgument, std::string(call) + ": the config was not made by NCCL_CONFIG_INITIALIZER");
  if (config->blocking == NCCL_CONFIG_UNDEF_INT) return ncclSuccess;
  if (config->blocking != 0 && config->blocking != 1)
    return refuse(ncclInvalidArgument,
                  std::string(call) + ": config->blocking is " + std::to_string(config->blocking) + ", not 0 or 1");
  blocking = config->blocking == 1;
  return ncclSuccess;
}

// --- Ids and init ---

constexpr char id_magic[] = "glm4 emulated NCCL unique id";

// The cliques whose ranks are still joining, by unique id. An aborted one stays, so that a rank
// joining it late fails instead of waiting for ranks that are gone.
struct pending_cliques {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<nccl_clique>> by_id;
};

// Never destroyed: a rank may still be joining on another thread while the process exits.
pending_cliques& pending() {
  static auto* const instance = new pending_cliques;
  return *instance;
}

// NCCL refuses a communicator with two ranks on one GPU.
std::optional<std::string> duplicate_gpu(const std::vector<int>& gpus) {
  for (std::size_t a = 0; a < gpus.size(); ++a)
    for (std::size_t b = a + 1; b < gpus.size(); ++b)
      if (gpus[a] == gpus[b])
        return "ranks " + std::to_string(a) + " and " + std::to_string(b) + " are both on GPU " +
               std::to_string(gpus[a]);
  return std::nullopt;
}

ncclResult_t wait_until_joined(nccl_clique& c, int rank, const char* call) {
  std::unique_lock lock(c.mutex);
  const auto what = [&] {
    return std::string(call) + " of rank " + std::to_string(rank) + " of " + std::to_string(c.nranks) +
           " waited for " + absent_ranks(c.nranks, [&](int r) { return c.gpus[at(r)] >= 0; }) + " to join";
  };
  if (!wait_in(c, lock, what, [&] { return c.complete(); }))
    return refuse(ncclRemoteError, std::string(call) + ": a rank aborted the communicator before every rank joined");
  if (c.init_error != ncclSuccess) return refuse(c.init_error, c.init_error_text);
  return ncclSuccess;
}

// Rank `rank` joins the clique of `id` (made by its first rank) from GPU `gpu`; null after a refusal, whose
// status is then in `status`.
std::shared_ptr<nccl_clique> join(const ncclUniqueId& id, int nranks, int rank, int gpu, const char* call,
                                  ncclResult_t& status) {
  pending_cliques& registry = pending();
  const std::lock_guard registry_lock(registry.mutex);
  const std::string key(id.internal, sizeof id.internal);
  std::shared_ptr<nccl_clique>& entry = registry.by_id[key];
  if (!entry) entry = std::make_shared<nccl_clique>(nranks);
  std::shared_ptr<nccl_clique> members = entry;
  nccl_clique& c = *members;
  const std::lock_guard lock(c.mutex);
  status = ncclSuccess;
  if (c.nranks != nranks)
    status = refuse(ncclInvalidArgument, std::string(call) + ": rank " + std::to_string(rank) + " says " +
                                             std::to_string(nranks) + " ranks, an earlier rank of that id said " +
                                             std::to_string(c.nranks));
  else if (c.aborted)
    status = refuse(ncclRemoteError, std::string(call) + ": a rank of that id aborted its communicator already");
  else if (c.gpus[at(rank)] >= 0)
    status =
        refuse(ncclInvalidArgument, std::string(call) + ": rank " + std::to_string(rank) + " joined that id twice");
  if (status != ncclSuccess) return nullptr;
  c.gpus[at(rank)] = gpu;
  if (++c.joined == c.nranks) {
    if (const auto duplicate = duplicate_gpu(c.gpus)) {
      c.init_error = ncclInvalidUsage;
      c.init_error_text = std::string(call) + ": " + *duplicate;
    }
    registry.by_id.erase(key);
    c.changed.notify_all();
  }
  return members;
}

ncclResult_t init_rank(ncclComm_t* comm, int nranks, const ncclUniqueId& id, int rank, const ncclConfig_t* config,
                       const char* call) {
  if (comm == nullptr) return refuse(ncclInvalidArgument, std::string(call) + ": comm is NULL");
  *comm = nullptr;
  bool blocking = true;
  if (const ncclResult_t status = blocking_of(config, call, blocking); status != ncclSuccess) return status;
  if (nranks < 1 || rank < 0 || rank >= nranks)
    return refuse(ncclInvalidArgument, std::string(call) + ": rank " + std::to_string(rank) + " of " +
                                           std::to_string(nranks) + " is no rank");
  if (std::memcmp(id.internal, id_magic, sizeof id_magic) != 0)
    return refuse(ncclInvalidArgument, std::string(call) + ": the id was not made by ncclGetUniqueId");
  const int gpu = current_gpu();
  ncclResult_t status = ncclSuccess;
  std::shared_ptr<nccl_clique> members = join(id, nranks, rank, gpu, call, status);
  if (!members) return status;
  auto* made = new ncclComm{members, rank, gpu};
  *comm = made;
  if (!blocking) return ncclInProgress;  // ncclCommGetAsyncError tells when every rank is in
  if (in_group()) {
    hold_until_group_end([members, rank, call] { return wait_until_joined(*members, rank, call); });
    return ncclSuccess;
  }
  status = wait_until_joined(*members, rank, call);
  if (status != ncclSuccess) {
    delete made;
    *comm = nullptr;
  }
  return status;
}

// --- Split ---

void form_split(split_meeting& m, const nccl_clique& parent) {
  std::map<int, std::vector<std::pair<int, int>>> by_color;  // (key, parent rank) by color
  for (int r = 0; r < parent.nranks; ++r) {
    const auto [color, key] = *m.asks[at(r)];
    if (color != NCCL_SPLIT_NOCOLOR) by_color[color].emplace_back(key, r);
  }
  m.cliques.resize(at(parent.nranks));
  m.ranks.assign(at(parent.nranks), -1);
  for (auto& [color, members] : by_color) {
    std::sort(members.begin(), members.end());
    auto made = std::make_shared<nccl_clique>(static_cast<int>(members.size()));
    for (std::size_t i = 0; i < members.size(); ++i) {
      const int parent_rank = members[i].second;
      made->gpus[i] = parent.gpus[at(parent_rank)];
      m.cliques[at(parent_rank)] = made;
      m.ranks[at(parent_rank)] = static_cast<int>(i);
    }
    made->joined = made->nranks;
  }
}

std::uint64_t arrive_at_split(nccl_clique& c, int rank, int color, int key) {
  const std::lock_guard lock(c.mutex);
  const std::uint64_t k = c.splits_begun[at(rank)]++;
  split_meeting& m = c.splits[k];
  if (m.asks.empty()) m.asks.resize(at(c.nranks));
  m.asks[at(rank)] = std::pair(color, key);
  if (++m.arrived == c.nranks) {
    form_split(m, c);
    m.done = true;
    c.changed.notify_all();
  }
  return k;
}

ncclResult_t finish_split(nccl_clique& c, int rank, int gpu, std::uint64_t k, ncclComm_t* newcomm) {
  std::unique_lock lock(c.mutex);
  split_meeting& m = c.splits.at(k);
  const auto what = [&] {
    return "ncclCommSplit #" + std::to_string(k) + " of rank " + std::to_string(rank) + " waited for " +
           absent_ranks(c.nranks, [&](int r) { return m.asks[at(r)].has_value(); }) + " to split too";
  };
  if (!wait_in(c, lock, what, [&] { return m.done; }))
    return refuse(ncclRemoteError, "ncclCommSplit: a rank aborted the parent communicator");
  std::shared_ptr<nccl_clique> made = m.cliques[at(rank)];
  const int new_rank = m.ranks[at(rank)];
  if (++m.left == c.nranks) c.splits.erase(k);
  *newcomm = made ? new ncclComm{std::move(made), new_rank, gpu} : nullptr;
  return ncclSuccess;
}

ncclResult_t split(const ncclComm* comm, int color, int key, ncclComm_t* newcomm, const ncclConfig_t* config) {
  if (newcomm == nullptr) return refuse(ncclInvalidArgument, "ncclCommSplit: newcomm is NULL");
  *newcomm = nullptr;
  bool blocking = true;  // a nonblocking split waits all the same; it then returns ncclSuccess
  if (const ncclResult_t status = blocking_of(config, "ncclCommSplit", blocking); status != ncclSuccess) return status;
  if (const ncclResult_t status = usable(comm, "ncclCommSplit"); status != ncclSuccess) return status;
  if (color < 0 && color != NCCL_SPLIT_NOCOLOR)
    return refuse(ncclInvalidArgument, "ncclCommSplit: color " + std::to_string(color) + " is negative");
  std::shared_ptr<nccl_clique> parent = comm->members;
  const int rank = comm->rank, gpu = comm->gpu;
  const std::uint64_t k = arrive_at_split(*parent, rank, color, key);
  if (in_group()) {
    hold_until_group_end([parent, rank, gpu, k, newcomm] { return finish_split(*parent, rank, gpu, k, newcomm); });
    return ncclSuccess;
  }
  return finish_split(*parent, rank, gpu, k, newcomm);
}

// --- Abort ---

// The handles ncclCommAbort took, never freed: another thread may be about to call with one (nccl_group.cpp
// aborts every rank's communicator from one thread, while a rank may be between its abort check and its next
// call), and gets ncclInvalidUsage instead of a use after free. Never destroyed, as pending().
struct aborted_handles {
  std::mutex mutex;
  std::vector<std::unique_ptr<ncclComm>> kept;
};

void keep_for_good(ncclComm* comm) {
  static auto* const handles = new aborted_handles;
  const std::lock_guard lock(handles->mutex);
  handles->kept.emplace_back(comm);
}

}  // namespace
}  // namespace glm4::emulated_cuda::nccl

using namespace glm4::emulated_cuda;
using namespace glm4::emulated_cuda::nccl;

extern "C" {

ncclResult_t ncclGetVersion(int* version) {
  if (version == nullptr) return refuse(ncclInvalidArgument, "ncclGetVersion: version is NULL");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
  if (uniqueId == nullptr) return refuse(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is NULL");
  static std::atomic<std::uint64_t> made{0};
  const std::uint64_t serial = ++made;
  *uniqueId = ncclUniqueId{};
  std::memcpy(uniqueId->internal, id_magic, sizeof id_magic);
  std::memcpy(uniqueId->internal + sizeof id_magic, &serial, sizeof serial);
  return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

// Per thread here (NCCL keeps one per process): ranks are threads.
const char* ncclGetLastError(ncclComm_t /*comm*/) { return last_error_text().c_str(); }

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank, ncclConfig_t* config) {
  return noted(init_rank(comm, nranks, commId, rank, config, "ncclCommInitRankConfig"));
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
  return noted(init_rank(comm, nranks, commId, rank, nullptr, "ncclCommInitRank"));
}

ncclResult_t ncclCommInitAll(ncclComm_t* comm, int ndev, const int* devlist) {
  if (comm == nullptr) return refuse(ncclInvalidArgument, "ncclCommInitAll: comm is NULL");
  if (ndev < 1) return refuse(ncclInvalidArgument, "ncclCommInitAll: ndev is " + std::to_string(ndev));
  std::vector<int> gpus;
  for (int r = 0; r < ndev; ++r) {
    const int gpu = devlist != nullptr ? devlist[r] : r;
    if (gpu < 0 || gpu >= emulated_gpu_count())
      return refuse(ncclInvalidArgument, "ncclCommInitAll: there is no GPU " + std::to_string(gpu));
    gpus.push_back(gpu);
  }
  if (const auto duplicate = duplicate_gpu(gpus)) return refuse(ncclInvalidUsage, "ncclCommInitAll: " + *duplicate);
  auto members = std::make_shared<nccl_clique>(ndev);
  members->gpus = gpus;
  members->joined = ndev;
  for (int r = 0; r < ndev; ++r) comm[r] = new ncclComm{members, r, gpus[at(r)]};
  return ncclSuccess;
}

ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm, ncclConfig_t* config) {
  return noted(split(comm, color, key, newcomm, config));
}

// ncclRemoteError once any rank aborted the communicator (ncclGetLastError says why).
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  if (const ncclResult_t status = live_handle(comm, "ncclCommGetAsyncError"); status != ncclSuccess) return status;
  if (asyncError == nullptr) return refuse(ncclInvalidArgument, "ncclCommGetAsyncError: asyncError is NULL");
  nccl_clique& c = *comm->members;
  const std::lock_guard lock(c.mutex);
  *asyncError = c.aborted ? refuse(ncclRemoteError, "the communicator was aborted: " + c.abort_reason)
                : !c.complete() ? ncclInProgress
                                : c.init_error;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (const ncclResult_t status = live_handle(comm, "ncclCommCount"); status != ncclSuccess) return status;
  if (count == nullptr) return refuse(ncclInvalidArgument, "ncclCommCount: count is NULL");
  *count = comm->members->nranks;
  return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device) {
  if (const ncclResult_t status = live_handle(comm, "ncclCommCuDevice"); status != ncclSuccess) return status;
  if (device == nullptr) return refuse(ncclInvalidArgument, "ncclCommCuDevice: device is NULL");
  *device = comm->gpu;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (const ncclResult_t status = live_handle(comm, "ncclCommUserRank"); status != ncclSuccess) return status;
  if (rank == nullptr) return refuse(ncclInvalidArgument, "ncclCommUserRank: rank is NULL");
  *rank = comm->rank;
  return ncclSuccess;
}

// Work is done when its stream gets to it: there is nothing left to flush.
ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (const ncclResult_t status = live_handle(comm, "ncclCommFinalize"); status != ncclSuccess) return status;
  {
    nccl_clique& c = *comm->members;
    const std::lock_guard lock(c.mutex);
    if (c.aborted)
      return refuse(ncclInvalidUsage, "ncclCommFinalize on an aborted communicator (" + c.abort_reason + ")");
  }
  comm->finalized = true;
  return ncclSuccess;
}

// A rank leaving before every rank joined leaves the others nobody to wait for: that is an abort.
ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  if (const ncclResult_t status = live_handle(comm, "ncclCommDestroy"); status != ncclSuccess) return status;
  {
    nccl_clique& c = *comm->members;
    const std::lock_guard lock(c.mutex);
    if (!c.complete())
      c.abort("rank " + std::to_string(comm->rank) + " destroyed its communicator before every rank joined");
  }
  delete comm;
  return ncclSuccess;
}

// Aborts every rank's communicator; the handle stays readable (see keep_for_good), each later call on it
// returning ncclInvalidUsage.
ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  if (comm->aborted.exchange(true)) return live_handle(comm, "ncclCommAbort");  // refused: aborted already
  abort_clique(*comm->members, "rank " + std::to_string(comm->rank) + " called ncclCommAbort");
  keep_for_good(comm);
  return ncclSuccess;
}

}  // extern "C"
