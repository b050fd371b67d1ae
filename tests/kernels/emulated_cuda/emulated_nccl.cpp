// NCCL of the host emulation of CUDA (emulated_cuda.hpp), linked instead of libnccl: the ranks of a
// communicator are threads of this process, each on its own emulated GPU. Collectives, sends and
// receives are stream work, so a graph capture records them and every replay exchanges anew, with
// the buffers' contents at that time. In that work the ranks meet: the k-th collective of each rank
// meets the k-th of the others (the k-th send from r to p meets the k-th receive by p from r), and
// the last to arrive computes every rank's result, in rank order, so all ranks get the same bits.
#include "tests/kernels/emulated_cuda/emulated_nccl.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_cuda.hpp"
#include "tests/kernels/emulated_cuda/emulated_nccl_types.hpp"
#include "tests/kernels/emulated_cuda/emulated_runtime.hpp"

namespace glm4::emulated_cuda {

struct nccl_clique;

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
  int blocked = 0;                               // calls waiting now (wait_for_blocked_calls)
  std::vector<std::uint64_t> collectives_begun;  // by rank
  std::map<std::uint64_t, collective_meeting> collectives;
  std::vector<std::uint64_t> sends_begun, receives_begun;          // [from * nranks + to]
  std::map<std::tuple<int, int, std::uint64_t>, p2p_meeting> p2p;  // by (from, to, k)
  std::vector<std::uint64_t> splits_begun;                         // by rank
  std::map<std::uint64_t, split_meeting> splits;

  bool complete() const { return joined == nranks; }
};

}  // namespace glm4::emulated_cuda

// ncclComm_t points to this (incomplete in nccl.h): one rank's handle on its communicator. Only the
// rank's own calls read it; stream work holds the clique instead, since the handle dies at abort.
struct ncclComm {
  std::shared_ptr<glm4::emulated_cuda::nccl_clique> members;
  int rank = 0;
  int gpu = 0;
  bool finalized = false;
};

namespace glm4::emulated_cuda {
namespace {

using namespace nccl_types;

// Every wait ends by then: a rank that never comes fails the test instead of hanging it.
constexpr auto safety_timeout = std::chrono::seconds(120);

std::size_t at(int index) { return static_cast<std::size_t>(index); }

const char* kind_name(collective_kind kind) {
  switch (kind) {
    case collective_kind::all_reduce: return "ncclAllReduce";
    case collective_kind::all_gather: return "ncclAllGather";
    case collective_kind::broadcast: return "ncclBroadcast";
    case collective_kind::reduce: return "ncclReduce";
    case collective_kind::reduce_scatter: return "ncclReduceScatter";
  }
  return "a collective";
}

bool reduces(collective_kind kind) {
  return kind == collective_kind::all_reduce || kind == collective_kind::reduce ||
         kind == collective_kind::reduce_scatter;
}

bool rooted(collective_kind kind) { return kind == collective_kind::broadcast || kind == collective_kind::reduce; }

// --- Errors, waits and checks shared by every call ---

thread_local std::string last_error_text;

ncclResult_t refuse(ncclResult_t status, const std::string& why) {
  last_error_text = "emulated NCCL: " + why;
  return status;
}

std::string ranks_text(const std::vector<int>& ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(ranks[i]);
  return text;
}

std::string address_text(const void* address) {
  std::ostringstream text;
  text << address;
  return text.str();
}

// Waits under `lock` on clique `c` until `ready()` or an abort; returns whether ready. Past the safety
// timeout it throws, naming the wait (`what()`).
template <class What, class Ready>
bool wait_in(nccl_clique& c, std::unique_lock<std::mutex>& lock, What what, Ready ready) {
  ++c.blocked;
  c.changed.notify_all();
  const bool woke = c.changed.wait_for(lock, safety_timeout, [&] { return c.aborted || ready(); });
  --c.blocked;
  if (!woke)
    throw std::runtime_error("emulated NCCL: " + what() + " for " +
                             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(safety_timeout).count()) +
                             " s; giving up (a rank that never makes the matching call?)");
  return ready();
}

// A buffer a GPU's NCCL kernel reads or writes: device memory of that rank's GPU, or a fault.
void expect_gpu_memory(const char* call, int rank, int gpu, const char* which, const void* buffer, std::size_t bytes) {
  if (bytes == 0) return;
  const int owner = allocation_gpu(buffer);
  if (owner == gpu && in_device_allocation(buffer, bytes)) return;
  const std::string why = owner < 0      ? "is in no cudaMalloc allocation"
                          : owner != gpu ? "is memory of GPU " + std::to_string(owner)
                                         : "runs past the end of its cudaMalloc allocation";
  throw std::runtime_error(std::string("emulated NCCL: ") + call + " on rank " + std::to_string(rank) + " (GPU " +
                           std::to_string(gpu) + "): its " + which + " (" + std::to_string(bytes) + " bytes at " +
                           address_text(buffer) + ") " + why + "; the GPU would fault");
}

// Whether a rank may issue calls on `comm`: it exists, every rank has joined, nobody aborted it.
ncclResult_t usable(const ncclComm* comm, const char* call) {
  if (comm == nullptr) return refuse(ncclInvalidArgument, std::string(call) + ": comm is NULL");
  if (comm->finalized) return refuse(ncclInvalidUsage, std::string(call) + " on a finalized communicator");
  nccl_clique& c = *comm->members;
  const std::lock_guard lock(c.mutex);
  if (c.aborted) return refuse(ncclInvalidUsage, std::string(call) + " on an aborted communicator");
  if (!c.complete()) return refuse(ncclInvalidUsage, std::string(call) + " before every rank joined the communicator");
  if (c.init_error != ncclSuccess) return refuse(c.init_error, c.init_error_text);
  return ncclSuccess;
}

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

// --- Groups: calls held until the outermost ncclGroupEnd ---

// One rank's part in one meeting, on its stream: arrive posts it (the last to arrive completes the
// meeting for every rank); finish waits for the meeting. A group arrives with all its calls before it
// waits for any, so one thread may drive several ranks, or receive from several peers.
class exchange {
 public:
  virtual ~exchange() = default;
  virtual void arrive() = 0;
  virtual void finish() = 0;
};

struct held_call {
  cudaStream_t stream = nullptr;
  std::shared_ptr<exchange> work;        // stream work, or else
  std::function<ncclResult_t()> settle;  // the wait of an init or split made in the group
};

struct group_calls {
  int depth = 0;
  std::vector<held_call> held;
  ncclResult_t error = ncclSuccess;  // of the first call refused in the group
};

thread_local group_calls group;

// A call's status; a refusal inside a group is also the group's.
ncclResult_t noted(ncclResult_t status) {
  if (status != ncclSuccess && status != ncclInProgress && group.depth > 0 && group.error == ncclSuccess)
    group.error = status;
  return status;
}

ncclResult_t enqueued(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return ncclSuccess;
  return refuse(ncclUnhandledCudaError,
                std::string(call) + ": the stream refused the work: " + cudaGetErrorString(status));
}

ncclResult_t issue(const char* call, cudaStream_t stream, std::shared_ptr<exchange> work) {
  if (group.depth > 0) {
    group.held.push_back({stream, std::move(work), {}});
    return ncclSuccess;
  }
  const auto arrive_and_finish = [work] {
    work->arrive();
    work->finish();
  };
  return enqueued(try_enqueue(stream, arrive_and_finish), call);
}

// --- Collectives ---

std::string describe(const collective_call& call) {
  std::string text =
      std::string(kind_name(call.kind)) + "(count " + std::to_string(call.count) + ", " + type_name(call.type);
  if (reduces(call.kind)) text += std::string(", ") + op_name(call.op);
  if (rooted(call.kind)) text += ", root " + std::to_string(call.root);
  return text + ")";
}

bool same_call(const collective_call& a, const collective_call& b) {
  return a.kind == b.kind && a.count == b.count && a.type == b.type && (!reduces(a.kind) || a.op == b.op) &&
         (!rooted(a.kind) || a.root == b.root);
}

// Every rank's result, into every rank's recvbuff. Everything is read before anything is written, since
// buffers may be shared (in place).
void complete_collective(const collective_meeting& m, int nranks) {
  const collective_call& call = *m.calls[0];
  const std::size_t unit = type_size(call.type), bytes = call.count * unit;
  const auto send_of = [&](int r) { return static_cast<const std::byte*>(m.calls[at(r)]->send); };
  const auto recv_of = [&](int r) { return static_cast<std::byte*>(m.calls[at(r)]->recv); };
  std::vector<std::byte> result;
  if (call.kind == collective_kind::all_gather) {
    result.resize(bytes * at(nranks));
    for (int r = 0; r < nranks; ++r) std::memcpy(result.data() + at(r) * bytes, send_of(r), bytes);
    for (int r = 0; r < nranks; ++r) std::memcpy(recv_of(r), result.data(), result.size());
    return;
  }
  if (call.kind == collective_kind::broadcast) {
    result.assign(send_of(call.root), send_of(call.root) + bytes);
    for (int r = 0; r < nranks; ++r) std::memcpy(recv_of(r), result.data(), bytes);
    return;
  }
  const std::size_t elements = call.kind == collective_kind::reduce_scatter ? call.count * at(nranks) : call.count;
  std::vector<std::vector<std::byte>> inputs(at(nranks));
  for (int r = 0; r < nranks; ++r) inputs[at(r)].assign(send_of(r), send_of(r) + elements * unit);
  result.resize(elements * unit);
  reduce(call.type, call.op, inputs, result.data(), elements);
  if (call.kind == collective_kind::reduce) {
    std::memcpy(recv_of(call.root), result.data(), bytes);
  } else {
    const bool scatter = call.kind == collective_kind::reduce_scatter;
    for (int r = 0; r < nranks; ++r) std::memcpy(recv_of(r), result.data() + (scatter ? at(r) * bytes : 0), bytes);
  }
}

class collective_exchange final : public exchange {
 public:
  collective_exchange(std::shared_ptr<nccl_clique> members, int rank, int gpu, const collective_call& call)
      : members_(std::move(members)), rank_(rank), gpu_(gpu), call_(call) {}

  void arrive() override {
    expect_buffers();
    nccl_clique& c = *members_;
    const std::lock_guard lock(c.mutex);
    meeting_.reset();
    if (c.aborted) return;  // as a killed kernel: nothing happens
    const std::uint64_t k = c.collectives_begun[at(rank_)]++;
    meeting_ = k;
    collective_meeting& m = c.collectives[k];
    if (m.calls.empty()) m.calls.resize(at(c.nranks));
    if (!m.error.empty()) return;
    for (int r = 0; r < c.nranks; ++r)
      if (m.calls[at(r)] && !same_call(*m.calls[at(r)], call_)) {
        m.error = "emulated NCCL: the ranks' collective calls #" + std::to_string(k) + " on a communicator of " +
                  std::to_string(c.nranks) + " ranks differ: rank " + std::to_string(r) + " calls " +
                  describe(*m.calls[at(r)]) + ", rank " + std::to_string(rank_) + " calls " + describe(call_) +
                  " (real NCCL would hang or corrupt memory)";
        c.changed.notify_all();
        return;
      }
    m.calls[at(rank_)] = call_;
    if (++m.arrived == c.nranks) {
      complete_collective(m, c.nranks);
      m.done = true;
      c.changed.notify_all();
    }
  }

  void finish() override {
    if (!meeting_) return;
    nccl_clique& c = *members_;
    std::unique_lock lock(c.mutex);
    collective_meeting& m = c.collectives.at(*meeting_);
    const auto what = [&] {
      std::vector<int> missing;
      for (int r = 0; r < c.nranks; ++r)
        if (!m.calls[at(r)]) missing.push_back(r);
      return "rank " + std::to_string(rank_) + "'s " + describe(call_) + " (collective call #" +
             std::to_string(*meeting_) + ") waited for " + ranks_text(missing) + " to call it";
    };
    if (!wait_in(c, lock, what, [&] { return m.done || !m.error.empty(); })) return;  // aborted
    const std::string error = m.error;
    if (++m.left == c.nranks) c.collectives.erase(*meeting_);
    if (!error.empty()) throw std::runtime_error(error);
  }

 private:
  void expect_buffers() const {
    const std::size_t bytes = call_.count * type_size(call_.type), nranks = at(members_->nranks);
    const bool root = call_.root == rank_;
    std::size_t send = bytes, recv = bytes;
    switch (call_.kind) {
      case collective_kind::all_gather: recv *= nranks; break;
      case collective_kind::reduce_scatter: send *= nranks; break;
      case collective_kind::broadcast: send = root ? send : 0; break;
      case collective_kind::reduce: recv = root ? recv : 0; break;
      case collective_kind::all_reduce: break;
    }
    expect_gpu_memory(kind_name(call_.kind), rank_, gpu_, "sendbuff", call_.send, send);
    expect_gpu_memory(kind_name(call_.kind), rank_, gpu_, "recvbuff", call_.recv, recv);
  }

  std::shared_ptr<nccl_clique> members_;
  int rank_, gpu_;
  collective_call call_;
  std::optional<std::uint64_t> meeting_;  // set by arrive for finish; each replay sets its own
};

ncclResult_t start_collective(ncclComm* comm, const collective_call& call, cudaStream_t stream) {
  const std::string name = kind_name(call.kind);
  if (const ncclResult_t status = usable(comm, name.c_str()); status != ncclSuccess) return status;
  const int nranks = comm->members->nranks;
  if (type_size(call.type) == 0)
    return refuse(ncclInvalidArgument, name + ": datatype " + std::to_string(call.type) + " is not one of NCCL's");
  if (reduces(call.kind)) {
    if (call.op < 0 || call.op >= ncclNumOps)
      return refuse(ncclInvalidArgument, name + ": op " + std::to_string(call.op) +
                                             " is not a built-in one (ncclRedOpCreatePreMulSum is not emulated)");
    if ((call.type == ncclFloat8e4m3 || call.type == ncclFloat8e5m2) && emulated_sm() < 90)
      return refuse(ncclInvalidArgument, name + ": reductions of " + type_name(call.type) + " need sm_90 or newer");
  }
  if (rooted(call.kind) && (call.root < 0 || call.root >= nranks))
    return refuse(ncclInvalidArgument,
                  name + ": root " + std::to_string(call.root) + " is not a rank of " + std::to_string(nranks));
  const bool root = call.root == comm->rank;
  const bool needs_send = call.kind != collective_kind::broadcast || root;
  const bool needs_recv = call.kind != collective_kind::reduce || root;
  if (call.count > 0 && ((needs_send && call.send == nullptr) || (needs_recv && call.recv == nullptr)))
    return refuse(ncclInvalidArgument,
                  name + ": " + (needs_send && call.send == nullptr ? "sendbuff" : "recvbuff") + " is NULL");
  if (const int stream_on = stream_gpu(stream); stream_on != comm->gpu)
    return refuse(ncclInvalidArgument,
                  name + " on rank " + std::to_string(comm->rank) + " (GPU " + std::to_string(comm->gpu) +
                      "): the stream " + (stream_on < 0 ? "is unknown" : "is GPU " + std::to_string(stream_on) + "'s"));
  if (call.count == 0) return ncclSuccess;  // NCCL drops empty collectives
  return issue(name.c_str(), stream, std::make_shared<collective_exchange>(comm->members, comm->rank, comm->gpu, call));
}

// --- Point to point ---

class p2p_exchange final : public exchange {
 public:
  p2p_exchange(std::shared_ptr<nccl_clique> members, int rank, int gpu, bool sending, int peer, const void* data,
               std::size_t count, ncclDataType_t type)
      : members_(std::move(members)),
        rank_(rank),
        gpu_(gpu),
        sending_(sending),
        peer_(peer),
        data_(data),
        count_(count),
        type_(type) {}

  void arrive() override {
    expect_gpu_memory(name(), rank_, gpu_, sending_ ? "sendbuff" : "recvbuff", data_, count_ * type_size(type_));
    nccl_clique& c = *members_;
    const std::lock_guard lock(c.mutex);
    meeting_.reset();
    if (c.aborted) return;
    const int from = sending_ ? rank_ : peer_, to = sending_ ? peer_ : rank_;
    std::uint64_t& begun = (sending_ ? c.sends_begun : c.receives_begun)[at(from * c.nranks + to)];
    meeting_ = std::tuple(from, to, begun++);
    p2p_meeting& m = c.p2p[*meeting_];
    if (sending_) {
      m.sent = true;
      m.source = data_;
      m.send_count = count_;
      m.send_type = type_;
    } else {
      m.received = true;
      m.target = const_cast<void*>(data_);  // a receive's buffer, given to ncclRecv as void*
      m.receive_count = count_;
      m.receive_type = type_;
    }
    if (!m.sent || !m.received) return;
    if (m.send_count != m.receive_count || m.send_type != m.receive_type) {
      m.error = "emulated NCCL: rank " + std::to_string(from) + "'s ncclSend #" +
                std::to_string(std::get<2>(*meeting_)) + " to rank " + std::to_string(to) + " (count " +
                std::to_string(m.send_count) + ", " + type_name(m.send_type) + ") does not match rank " +
                std::to_string(to) + "'s ncclRecv from rank " + std::to_string(from) + " (count " +
                std::to_string(m.receive_count) + ", " + type_name(m.receive_type) +
                ") (real NCCL would hang or corrupt memory)";
    } else {
      std::memmove(m.target, m.source, m.send_count * type_size(m.send_type));
      m.done = true;
    }
    c.changed.notify_all();
  }

  void finish() override {
    if (!meeting_) return;
    nccl_clique& c = *members_;
    std::unique_lock lock(c.mutex);
    p2p_meeting& m = c.p2p.at(*meeting_);
    const auto what = [&] {
      return "rank " + std::to_string(rank_) + "'s " + name() + " #" + std::to_string(std::get<2>(*meeting_)) +
             (sending_ ? " to" : " from") + " rank " + std::to_string(peer_) + " (count " + std::to_string(count_) +
             ", " + type_name(type_) + ") waited for rank " + std::to_string(peer_) + "'s " +
             (sending_ ? "ncclRecv" : "ncclSend");
    };
    if (!wait_in(c, lock, what, [&] { return m.done || !m.error.empty(); })) return;  // aborted
    const std::string error = m.error;
    if (++m.left == 2) c.p2p.erase(*meeting_);
    if (!error.empty()) throw std::runtime_error(error);
  }

 private:
  const char* name() const { return sending_ ? "ncclSend" : "ncclRecv"; }

  std::shared_ptr<nccl_clique> members_;
  int rank_, gpu_;
  bool sending_;
  int peer_;
  const void* data_;
  std::size_t count_;
  ncclDataType_t type_;
  std::optional<std::tuple<int, int, std::uint64_t>> meeting_;
};

ncclResult_t start_p2p(ncclComm* comm, bool sending, const void* data, std::size_t count, ncclDataType_t type, int peer,
                       cudaStream_t stream) {
  const std::string name = sending ? "ncclSend" : "ncclRecv";
  if (const ncclResult_t status = usable(comm, name.c_str()); status != ncclSuccess) return status;
  if (type_size(type) == 0)
    return refuse(ncclInvalidArgument, name + ": datatype " + std::to_string(type) + " is not one of NCCL's");
  if (peer < 0 || peer >= comm->members->nranks)
    return refuse(ncclInvalidArgument, name + ": peer " + std::to_string(peer) + " is not a rank of " +
                                           std::to_string(comm->members->nranks));
  if (count > 0 && data == nullptr) return refuse(ncclInvalidArgument, name + ": the buffer is NULL");
  if (const int stream_on = stream_gpu(stream); stream_on != comm->gpu)
    return refuse(ncclInvalidArgument,
                  name + " on rank " + std::to_string(comm->rank) + " (GPU " + std::to_string(comm->gpu) +
                      "): the stream " + (stream_on < 0 ? "is unknown" : "is GPU " + std::to_string(stream_on) + "'s"));
  return issue(name.c_str(), stream,
               std::make_shared<p2p_exchange>(comm->members, comm->rank, comm->gpu, sending, peer, data, count, type));
}

// --- Communicators ---

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
    std::vector<int> missing;
    for (int r = 0; r < c.nranks; ++r)
      if (c.gpus[at(r)] < 0) missing.push_back(r);
    return std::string(call) + " of rank " + std::to_string(rank) + " of " + std::to_string(c.nranks) + " waited for " +
           ranks_text(missing) + " to join";
  };
  if (!wait_in(c, lock, what, [&] { return c.complete(); }))
    return refuse(ncclRemoteError, std::string(call) + ": a rank aborted the communicator before every rank joined");
  if (c.init_error != ncclSuccess) return refuse(c.init_error, c.init_error_text);
  return ncclSuccess;
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
  std::shared_ptr<nccl_clique> members;
  {
    pending_cliques& registry = pending();
    const std::lock_guard registry_lock(registry.mutex);
    const std::string key(id.internal, sizeof id.internal);
    std::shared_ptr<nccl_clique>& entry = registry.by_id[key];
    if (!entry) entry = std::make_shared<nccl_clique>(nranks);
    members = entry;
    nccl_clique& c = *members;
    const std::lock_guard lock(c.mutex);
    if (c.nranks != nranks)
      return refuse(ncclInvalidArgument, std::string(call) + ": rank " + std::to_string(rank) + " says " +
                                             std::to_string(nranks) + " ranks, an earlier rank of that id said " +
                                             std::to_string(c.nranks));
    if (c.aborted)
      return refuse(ncclRemoteError, std::string(call) + ": a rank of that id aborted its communicator already");
    if (c.gpus[at(rank)] >= 0)
      return refuse(ncclInvalidArgument,
                    std::string(call) + ": rank " + std::to_string(rank) + " joined that id twice");
    c.gpus[at(rank)] = gpu;
    if (++c.joined == c.nranks) {
      if (const auto duplicate = duplicate_gpu(c.gpus)) {
        c.init_error = ncclInvalidUsage;
        c.init_error_text = std::string(call) + ": " + *duplicate;
      }
      registry.by_id.erase(key);
      c.changed.notify_all();
    }
  }
  auto* made = new ncclComm{members, rank, gpu};
  *comm = made;
  if (!blocking) return ncclInProgress;  // ncclCommGetAsyncError tells when every rank is in
  if (group.depth > 0) {
    group.held.push_back({nullptr, nullptr, [members, rank, call] { return wait_until_joined(*members, rank, call); }});
    return ncclSuccess;
  }
  const ncclResult_t status = wait_until_joined(*members, rank, call);
  if (status != ncclSuccess) {
    delete made;
    *comm = nullptr;
  }
  return status;
}

void abort_clique(nccl_clique& c) {
  const std::lock_guard lock(c.mutex);
  c.aborted = true;
  c.changed.notify_all();
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
    std::vector<int> missing;
    for (int r = 0; r < c.nranks; ++r)
      if (!m.asks[at(r)]) missing.push_back(r);
    return "ncclCommSplit #" + std::to_string(k) + " of rank " + std::to_string(rank) + " waited for " +
           ranks_text(missing) + " to split too";
  };
  if (!wait_in(c, lock, what, [&] { return m.done; }))
    return refuse(ncclRemoteError, "ncclCommSplit: a rank aborted the parent communicator");
  std::shared_ptr<nccl_clique> made = m.cliques[at(rank)];
  const int new_rank = m.ranks[at(rank)];
  if (++m.left == c.nranks) c.splits.erase(k);
  *newcomm = made ? new ncclComm{std::move(made), new_rank, gpu} : nullptr;
  return ncclSuccess;
}

ncclResult_t split(ncclComm* comm, int color, int key, ncclComm_t* newcomm, const ncclConfig_t* config) {
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
  if (group.depth > 0) {
    group.held.push_back(
        {nullptr, nullptr, [parent, rank, gpu, k, newcomm] { return finish_split(*parent, rank, gpu, k, newcomm); }});
    return ncclSuccess;
  }
  return finish_split(*parent, rank, gpu, k, newcomm);
}

}  // namespace

void wait_for_blocked_calls(ncclComm_t comm, int count) {
  if (comm == nullptr) throw std::invalid_argument("wait_for_blocked_calls: comm is NULL");
  nccl_clique& c = *comm->members;
  std::unique_lock lock(c.mutex);
  if (!c.changed.wait_for(lock, safety_timeout, [&] { return c.aborted || c.blocked >= count; }))
    throw std::runtime_error("emulated NCCL: wait_for_blocked_calls waited too long for " + std::to_string(count) +
                             " blocked calls (" + std::to_string(c.blocked) + " now)");
}

}  // namespace glm4::emulated_cuda

using namespace glm4::emulated_cuda;

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
const char* ncclGetLastError(ncclComm_t /*comm*/) { return last_error_text.c_str(); }

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

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  if (comm == nullptr || asyncError == nullptr)
    return refuse(ncclInvalidArgument, "ncclCommGetAsyncError: comm or asyncError is NULL");
  nccl_clique& c = *comm->members;
  const std::lock_guard lock(c.mutex);
  *asyncError = c.aborted ? ncclRemoteError : !c.complete() ? ncclInProgress : c.init_error;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (comm == nullptr || count == nullptr) return refuse(ncclInvalidArgument, "ncclCommCount: comm or count is NULL");
  *count = comm->members->nranks;
  return ncclSuccess;
}

ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device) {
  if (comm == nullptr || device == nullptr)
    return refuse(ncclInvalidArgument, "ncclCommCuDevice: comm or device is NULL");
  *device = comm->gpu;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (comm == nullptr || rank == nullptr) return refuse(ncclInvalidArgument, "ncclCommUserRank: comm or rank is NULL");
  *rank = comm->rank;
  return ncclSuccess;
}

// Work is done when its stream gets to it: there is nothing left to flush.
ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (comm == nullptr) return refuse(ncclInvalidArgument, "ncclCommFinalize: comm is NULL");
  {
    const std::lock_guard lock(comm->members->mutex);
    if (comm->members->aborted) return refuse(ncclInvalidUsage, "ncclCommFinalize on an aborted communicator");
  }
  comm->finalized = true;
  return ncclSuccess;
}

// A rank leaving before every rank joined leaves the others nobody to wait for: that is an abort.
ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  {
    nccl_clique& c = *comm->members;
    const std::lock_guard lock(c.mutex);
    if (!c.complete()) {
      c.aborted = true;
      c.changed.notify_all();
    }
  }
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  abort_clique(*comm->members);
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclGroupStart() {
  ++group.depth;
  return ncclSuccess;
}

// The group's calls arrive at their meetings in order, then wait for them in order.
ncclResult_t ncclGroupEnd() {
  if (group.depth == 0) return refuse(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
  if (--group.depth > 0) return ncclSuccess;
  const std::vector<held_call> held = std::move(group.held);
  group.held.clear();
  if (const ncclResult_t refused = std::exchange(group.error, ncclSuccess); refused != ncclSuccess)
    return refused;  // NCCL launches nothing of a group with a refused call
  ncclResult_t status = ncclSuccess;
  const auto note = [&](ncclResult_t call_status) {
    if (status == ncclSuccess) status = call_status;
  };
  for (const held_call& call : held)
    if (call.work) note(enqueued(try_enqueue(call.stream, [work = call.work] { work->arrive(); }), "ncclGroupEnd"));
  for (const held_call& call : held)
    note(call.work ? enqueued(try_enqueue(call.stream, [work = call.work] { work->finish(); }), "ncclGroupEnd")
                   : call.settle());
  return status;
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  return noted(
      start_collective(comm, {collective_kind::all_reduce, count, datatype, op, 0, sendbuff, recvbuff}, stream));
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  return noted(start_collective(
      comm, {collective_kind::all_gather, sendcount, datatype, ncclSum, 0, sendbuff, recvbuff}, stream));
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  return noted(
      start_collective(comm, {collective_kind::broadcast, count, datatype, ncclSum, root, sendbuff, recvbuff}, stream));
}

ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream) {
  return ncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                        int root, ncclComm_t comm, cudaStream_t stream) {
  return noted(
      start_collective(comm, {collective_kind::reduce, count, datatype, op, root, sendbuff, recvbuff}, stream));
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return noted(start_collective(comm, {collective_kind::reduce_scatter, recvcount, datatype, op, 0, sendbuff, recvbuff},
                                stream));
}

ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return noted(start_p2p(comm, true, sendbuff, count, datatype, peer, stream));
}

ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return noted(start_p2p(comm, false, recvbuff, count, datatype, peer, stream));
}

}  // extern "C"
