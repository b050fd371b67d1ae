// The emulated NCCL's core: a communicator's clique of ranks, the meetings of their calls, errors and waits.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

// The emulated NCCL is linked instead of libnccl: the ranks of a communicator are threads of this process,
// each on its own emulated GPU. Collectives, sends and receives are stream work, so a graph capture records
// them and every replay exchanges anew, with the buffers' contents at that time. In that work the ranks meet:
// the k-th collective of each rank meets the k-th of the others (the k-th send from r to p meets the k-th
// receive by p from r), and the last to arrive computes every rank's result, in rank order, so all ranks get
// the same bits. Work that throws (a buffer a GPU would fault on, calls that differ across ranks) aborts the
// clique, so that its other ranks stop waiting at once, as a dead GPU context ends every kernel waiting on it.
//
// emulated_nccl_meetings.cpp: this header's functions and the collective and point-to-point meetings;
// emulated_nccl_comms.cpp: ids, init, split, finalize, destroy, abort; emulated_nccl_groups.cpp: groups;
// emulated_nccl_calls.cpp: the collective and point-to-point calls.
namespace glm4::emulated_cuda::nccl {

enum class collective_kind { all_reduce, all_gather, broadcast, reduce, reduce_scatter };

struct collective_call {
  collective_kind kind = collective_kind::all_reduce;
  std::size_t count = 0;  // NCCL's count argument (per rank)
  ncclDataType_t type = ncclInt8;
  ncclRedOp_t op = ncclSum;  // reductions only
  int root = 0;              // broadcast and reduce only
  const void* send = nullptr;
  void* recv = nullptr;
};

struct collective_meeting {
  std::vector<std::optional<collective_call>> calls;  // by rank, as they arrive
  int arrived = 0;
  int left = 0;  // the last rank to leave erases the meeting
  bool done = false;
  std::string error;  // the ranks' calls differ
};

struct p2p_meeting {
  bool sent = false, received = false;
  const void* source = nullptr;
  void* target = nullptr;
  std::size_t send_count = 0, receive_count = 0;
  ncclDataType_t send_type = ncclInt8, receive_type = ncclInt8;
  int left = 0;
  bool done = false;
  std::string error;
};

struct nccl_clique;

struct split_meeting {
  std::vector<std::optional<std::pair<int, int>>> asks;  // (color, key) by parent rank
  int arrived = 0;
  int left = 0;
  bool done = false;
  std::vector<std::shared_ptr<nccl_clique>> cliques;  // by parent rank; null for NCCL_SPLIT_NOCOLOR
  std::vector<int> ranks;                             // by parent rank: its rank in its new clique
};

// The ranks of one communicator: what they agreed on when they joined, and the meetings under way.
// Lives while a rank's ncclComm or a recorded graph holds it.
struct nccl_clique {
  explicit nccl_clique(int size)
      : nranks(size),
        gpus(static_cast<std::size_t>(size), -1),
        collectives_begun(static_cast<std::size_t>(size)),
        sends_begun(static_cast<std::size_t>(size) * static_cast<std::size_t>(size)),
        receives_begun(static_cast<std::size_t>(size) * static_cast<std::size_t>(size)),
        splits_begun(static_cast<std::size_t>(size)) {}

  const int nranks;
  std::mutex mutex;  // guards everything below
  std::condition_variable changed;
  std::vector<int> gpus;  // by rank; -1 until that rank joins
  int joined = 0;
  ncclResult_t init_error = ncclSuccess;
  std::string init_error_text;
  bool aborted = false;
  std::string abort_reason;                      // why, for the refusals of later calls
  int blocked = 0;                               // calls waiting now (wait_for_blocked_calls)
  std::vector<std::uint64_t> collectives_begun;  // by rank
  std::map<std::uint64_t, collective_meeting> collectives;
  std::vector<std::uint64_t> sends_begun, receives_begun;          // [from * nranks + to]
  std::map<std::tuple<int, int, std::uint64_t>, p2p_meeting> p2p;  // by (from, to, k)
  std::vector<std::uint64_t> splits_begun;                         // by rank
  std::map<std::uint64_t, split_meeting> splits;

  bool complete() const { return joined == nranks; }

  /// Marks the clique aborted (the first reason stays) and wakes its waiters; the mutex must be held.
  void abort(const std::string& reason);
};

}  // namespace glm4::emulated_cuda::nccl

// ncclComm_t points to this (incomplete in nccl.h): one rank's handle on its communicator. Only the rank's
// own calls read it, and stream work holds the clique instead. ncclCommAbort never frees it (another thread
// of the rank may be about to call with it); every call on it then returns ncclInvalidUsage.
struct ncclComm {
  std::shared_ptr<glm4::emulated_cuda::nccl::nccl_clique> members;
  int rank = 0;
  int gpu = 0;
  std::atomic<bool> finalized{false};
  std::atomic<bool> aborted{false};  // by ncclCommAbort on this handle
};

namespace glm4::emulated_cuda::nccl {

/// Every wait ends by then: a rank that never comes fails the test instead of hanging it.
inline constexpr auto safety_timeout = std::chrono::seconds(120);

inline std::size_t at(int index) { return static_cast<std::size_t>(index); }

// --- Errors ---

/// Sets this thread's ncclGetLastError text to "emulated NCCL: `why`" and returns `status`.
ncclResult_t refuse(ncclResult_t status, const std::string& why);
/// This thread's last error text (NCCL keeps one per process; here ranks are threads).
const std::string& last_error_text();

/// "rank 1" or "ranks 0, 2".
std::string ranks_text(const std::vector<int>& ranks);

/// ranks_text of the ranks r < nranks for which present(r) is false.
template <class Present>
std::string absent_ranks(int nranks, Present present) {
  std::vector<int> absent;
  for (int r = 0; r < nranks; ++r)
    if (!present(r)) absent.push_back(r);
  return ranks_text(absent);
}

// --- Waits and aborts ---

[[noreturn]] void throw_waited_too_long(const std::string& what);

/// Waits under `lock` on clique `c` until `ready()` or an abort; returns ready(). Past the safety timeout it
/// throws, naming the wait (`what()`).
template <class What, class Ready>
bool wait_in(nccl_clique& c, std::unique_lock<std::mutex>& lock, What what, Ready ready) {
  ++c.blocked;
  c.changed.notify_all();
  const bool woke = c.changed.wait_for(lock, safety_timeout, [&] { return c.aborted || ready(); });
  --c.blocked;
  if (!woke) throw_waited_too_long(what());
  return ready();
}

/// Aborts the clique (see nccl_clique::abort), taking its mutex.
void abort_clique(nccl_clique& c, const std::string& reason);

// --- Checks shared by the calls ---

/// ncclSuccess when `comm` is a handle a call may read: not NULL, not aborted (ncclCommAbort).
ncclResult_t live_handle(const ncclComm* comm, const char* call);
/// ncclSuccess when a rank may issue work on `comm`: a live handle, not finalized, every rank joined, the
/// communicator not aborted and its init not failed.
ncclResult_t usable(const ncclComm* comm, const char* call);
/// ncclSuccess when `type` is one of NCCL's datatypes.
ncclResult_t known_type(ncclDataType_t type, const std::string& call);
/// ncclSuccess when `stream` is a stream of the rank's GPU.
ncclResult_t stream_of_rank(const ncclComm& comm, cudaStream_t stream, const std::string& call);

// --- Stream work ---

/// One rank's part in one meeting, on its stream: arrive posts it (the last to arrive completes the meeting
/// for every rank); finish waits for the meeting. A group arrives with all its calls before it waits for any,
/// so one thread may drive several ranks, or receive from several peers. What either throws aborts the
/// clique (with the error's text) before it reaches the caller.
class exchange {
 public:
  exchange(std::shared_ptr<nccl_clique> members, int rank, int gpu)
      : members_(std::move(members)), rank_(rank), gpu_(gpu) {}
  exchange(const exchange&) = delete;
  exchange& operator=(const exchange&) = delete;
  virtual ~exchange() = default;

  void arrive();
  void finish();
  const std::shared_ptr<nccl_clique>& members() const { return members_; }

 protected:
  virtual void arrive_at_meeting() = 0;
  virtual void wait_for_meeting() = 0;

  /// A buffer the rank's NCCL kernel reads or writes: device memory of the rank's GPU, or a fault
  /// (std::runtime_error naming `call`, the rank and `which` buffer).
  void expect_device_memory(const char* call, const char* which, const void* buffer, std::size_t bytes) const;

  const std::shared_ptr<nccl_clique> members_;
  const int rank_, gpu_;
};

std::shared_ptr<exchange> collective_exchange(const ncclComm& comm, const collective_call& call);
std::shared_ptr<exchange> p2p_exchange(const ncclComm& comm, bool sending, int peer, const void* data,
                                       std::size_t count, ncclDataType_t type);

const char* kind_name(collective_kind kind);
bool reduces(collective_kind kind);
bool rooted(collective_kind kind);

}  // namespace glm4::emulated_cuda::nccl
