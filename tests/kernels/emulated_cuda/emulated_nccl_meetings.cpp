// The emulated NCCL's clique state, checks and waits, and the meetings of collective and point-to-point work.
#include "tests/kernels/emulated_cuda/emulated_nccl_meetings.hpp"

#include <cstring>
#include <sstream>

#include "tests/kernels/emulated_cuda/emulated_nccl.hpp"
#include "tests/kernels/emulated_cuda/emulated_nccl_types.hpp"
#include "tests/kernels/emulated_cuda/emulated_runtime.hpp"

namespace glm4::emulated_cuda::nccl {
namespace {

thread_local std::string last_error;

constexpr char error_prefix[] = "emulated NCCL: ";

std::string address_text(const void* address) {
  std::ostringstream text;
  text << address;
  return text.str();
}

}  // namespace

// --- Errors ---

ncclResult_t refuse(ncclResult_t status, const std::string& why) {
  last_error = error_prefix + why;
  return status;
}

const std::string& last_error_text() { return last_error; }

std::string ranks_text(const std::vector<int>& ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(ranks[i]);
  return text;
}

// --- Waits and aborts ---

void throw_waited_too_long(const std::string& what) {
  throw std::runtime_error(error_prefix + what + " for " +
                           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(safety_timeout).count()) +
                           " s; giving up (a rank that never makes the matching call?)");
}

void nccl_clique::abort(const std::string& reason) {
  if (!aborted) {
    aborted = true;
    // Errors thrown by the emulation carry the prefix that refuse adds again.
    abort_reason = reason.rfind(error_prefix, 0) == 0 ? reason.substr(sizeof error_prefix - 1) : reason;
  }
  changed.notify_all();
}

void abort_clique(nccl_clique& c, const std::string& reason) {
  const std::lock_guard lock(c.mutex);
  c.abort(reason);
}

// --- Checks shared by the calls ---

ncclResult_t live_handle(const ncclComm* comm, const char* call) {
  if (comm == nullptr) return refuse(ncclInvalidArgument, std::string(call) + ": comm is NULL");
  if (comm->aborted)
    return refuse(ncclInvalidUsage, std::string(call) + " on a communicator handle its rank aborted (ncclCommAbort)");
  return ncclSuccess;
}

ncclResult_t usable(const ncclComm* comm, const char* call) {
  if (const ncclResult_t status = live_handle(comm, call); status != ncclSuccess) return status;
  if (comm->finalized) return refuse(ncclInvalidUsage, std::string(call) + " on a finalized communicator");
  nccl_clique& c = *comm->members;
  const std::lock_guard lock(c.mutex);
  if (c.aborted)
    return refuse(ncclInvalidUsage, std::string(call) + " on an aborted communicator (" + c.abort_reason + ")");
  if (!c.complete()) return refuse(ncclInvalidUsage, std::string(call) + " before every rank joined the communicator");
  if (c.init_error != ncclSuccess) return refuse(c.init_error, c.init_error_text);
  return ncclSuccess;
}

ncclResult_t known_type(ncclDataType_t type, const std::string& call) {
  if (nccl_types::type_size(type) > 0) return ncclSuccess;
  return refuse(ncclInvalidArgument, call + ": datatype " + std::to_string(type) + " is not one of NCCL's");
}

ncclResult_t stream_of_rank(const ncclComm& comm, cudaStream_t stream, const std::string& call) {
  const std::optional<int> stream_on = stream_gpu(stream);
  if (stream_on == comm.gpu) return ncclSuccess;
  return refuse(ncclInvalidArgument,
                call + " on rank " + std::to_string(comm.rank) + " (GPU " + std::to_string(comm.gpu) +
                    "): the stream " + (!stream_on ? "is unknown" : "is GPU " + std::to_string(*stream_on) + "'s"));
}

// --- Stream work ---

namespace {

// Runs `step`; what it throws aborts clique `c` (with the error's text) on its way to the caller.
template <class Step>
void aborting_on_error(nccl_clique& c, Step step) {
  try {
    step();
  } catch (const std::exception& error) {
    abort_clique(c, error.what());
    throw;
  }
}

}  // namespace

void exchange::arrive() {
  aborting_on_error(*members_, [this] { arrive_at_meeting(); });
}

void exchange::finish() {
  aborting_on_error(*members_, [this] { wait_for_meeting(); });
}

void exchange::expect_device_memory(const char* call, const char* which, const void* buffer, std::size_t bytes) const {
  if (bytes == 0) return;
  const std::optional<int> owner = allocation_gpu(buffer);
  if (owner == gpu_ && in_device_allocation(buffer, bytes)) return;
  const std::string why = !owner          ? "is in no cudaMalloc allocation"
                          : owner != gpu_ ? "is memory of GPU " + std::to_string(*owner)
                                          : "runs past the end of its cudaMalloc allocation";
  throw std::runtime_error(error_prefix + std::string(call) + " on rank " + std::to_string(rank_) + " (GPU " +
                           std::to_string(gpu_) + "): its " + which + " (" + std::to_string(bytes) + " bytes at " +
                           address_text(buffer) + ") " + why + "; the GPU would fault");
}

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

namespace {

using namespace nccl_types;

// Waits (under `lock`) for the meeting `key` of `meetings` to complete or fail, or for an abort; the last of
// its `parties` to leave erases it. Throws the meeting's error; returns quietly after an abort, as a killed
// kernel ends. `what(meeting)` names the wait.
template <class Meetings, class What>
void leave_meeting(nccl_clique& c, std::unique_lock<std::mutex>& lock, Meetings& meetings,
                   const typename Meetings::key_type& key, int parties, What what) {
  auto& m = meetings.at(key);
  if (!wait_in(c, lock, [&] { return what(m); }, [&] { return m.done || !m.error.empty(); })) return;
  const std::string error = m.error;
  if (++m.left == parties) meetings.erase(key);
  if (!error.empty()) throw std::runtime_error(error);
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

class collective_work final : public exchange {
 public:
  collective_work(const ncclComm& comm, const collective_call& call)
      : exchange(comm.members, comm.rank, comm.gpu), call_(call) {}

 private:
  void arrive_at_meeting() override {
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

  void wait_for_meeting() override {
    if (!meeting_) return;
    nccl_clique& c = *members_;
    std::unique_lock lock(c.mutex);
    leave_meeting(c, lock, c.collectives, *meeting_, c.nranks, [&](const collective_meeting& m) {
      const std::string absent = absent_ranks(c.nranks, [&](int r) { return m.calls[at(r)].has_value(); });
      return "rank " + std::to_string(rank_) + "'s " + describe(call_) + " (collective call #" +
             std::to_string(*meeting_) + ") waited for " + absent + " to call it";
    });
  }

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
    expect_device_memory(kind_name(call_.kind), "sendbuff", call_.send, send);
    expect_device_memory(kind_name(call_.kind), "recvbuff", call_.recv, recv);
  }

  collective_call call_;
  std::optional<std::uint64_t> meeting_;  // set by arrive for finish; each replay sets its own
};

// --- Point to point ---

class p2p_work final : public exchange {
 public:
  p2p_work(const ncclComm& comm, bool sending, int peer, const void* data, std::size_t count, ncclDataType_t type)
      : exchange(comm.members, comm.rank, comm.gpu),
        sending_(sending),
        peer_(peer),
        data_(data),
        count_(count),
        type_(type) {}

 private:
  void arrive_at_meeting() override {
    expect_device_memory(name(), sending_ ? "sendbuff" : "recvbuff", data_, count_ * type_size(type_));
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

  void wait_for_meeting() override {
    if (!meeting_) return;
    nccl_clique& c = *members_;
    std::unique_lock lock(c.mutex);
    leave_meeting(c, lock, c.p2p, *meeting_, 2, [&](const p2p_meeting&) {
      return "rank " + std::to_string(rank_) + "'s " + name() + " #" + std::to_string(std::get<2>(*meeting_)) +
             (sending_ ? " to" : " from") + " rank " + std::to_string(peer_) + " (count " + std::to_string(count_) +
             ", " + type_name(type_) + ") waited for rank " + std::to_string(peer_) + "'s " +
             (sending_ ? "ncclRecv" : "ncclSend");
    });
  }

  const char* name() const { return sending_ ? "ncclSend" : "ncclRecv"; }

  bool sending_;
  int peer_;
  const void* data_;
  std::size_t count_;
  ncclDataType_t type_;
  std::optional<std::tuple<int, int, std::uint64_t>> meeting_;
};

}  // namespace

std::shared_ptr<exchange> collective_exchange(const ncclComm& comm, const collective_call& call) {
  return std::make_shared<collective_work>(comm, call);
}

std::shared_ptr<exchange> p2p_exchange(const ncclComm& comm, bool sending, int peer, const void* data,
                                       std::size_t count, ncclDataType_t type) {
  return std::make_shared<p2p_work>(comm, sending, peer, data, count, type);
}

}  // namespace glm4::emulated_cuda::nccl

namespace glm4::emulated_cuda {

void wait_for_blocked_calls(ncclComm_t comm, int count) {
  if (comm == nullptr) throw std::invalid_argument("wait_for_blocked_calls: comm is NULL");
  nccl::nccl_clique& c = *comm->members;
  std::unique_lock lock(c.mutex);
  if (!c.changed.wait_for(lock, nccl::safety_timeout, [&] { return c.aborted || c.blocked >= count; }))
    throw std::runtime_error("emulated NCCL: wait_for_blocked_calls waited too long for " + std::to_string(count) +
                             " blocked calls (" + std::to_string(c.blocked) + " now)");
}

}  // namespace glm4::emulated_cuda
