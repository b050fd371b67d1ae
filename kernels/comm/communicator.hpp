// Collectives among the tensor-parallel ranks of one pipeline stage. Every rank of a group calls
// each collective in the same order with tensors of the same shape; a rank that fails aborts the
// group so that its peers throw instead of waiting for it forever. Implementations: shared memory
// for CPU ranks of one process (here); NCCL for the GPUs of a stage (kernels/cuda/nccl_group).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/comm/group_ticket.hpp"
#include "kernels/tensor.hpp"

namespace glm4::kernels::comm {

/// Thrown by every collective of an aborted group, on every rank; what() says why.
class comm_aborted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class communicator {
 public:
  virtual ~communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Where the tensors it reduces live: host memory (shared memory) or a GPU's (NCCL).
  virtual device_kind memory() const = 0;

  /// x (any shape) F32 becomes the element-wise sum over the ranks. Every rank ends with the
  /// same bits: each element is added in rank order 0, 1, ... whoever computes it.
  virtual void all_reduce_sum(tensor& x) = 0;

  /// On rank 0, full (R, W) F32 = the ranks' local (R, w_r) F32 side by side in rank order
  /// (W = sum of w_r); other ranks pass no `full`. The vocabulary-split LM head uses it: only the
  /// rank that samples needs the whole logits.
  virtual void gather_columns(const tensor& local, tensor* full) = 0;

  /// Rank 0's `values` (host memory, the same count on every rank) land on every rank: small
  /// control data, such as the token ids a planned-ahead step feeds in, which only the sampling
  /// rank knows.
  virtual void broadcast_host(std::span<std::int32_t> values) = 0;

  /// Every collective waiting now or called later, on every rank, throws comm_aborted(why).
  /// Safe to call from any thread, more than once (the first reason stays).
  virtual void abort(const std::string& why) = 0;
};

/// `size` communicators over one shared-memory group, rank i at index i, for ranks running on
/// threads of this process with host-memory (CPU backend) tensors.
std::vector<std::shared_ptr<communicator>> make_shared_memory_group(int size);

/// The id of a new shared-memory group, for ranks that join it one by one (as NCCL ranks do).
std::vector<std::uint8_t> make_shared_memory_group_id();

/// Rank ticket.rank of the shared-memory group ticket.id, which the first join makes with
/// ticket.size ranks; returns at once. Throws std::invalid_argument for a rank outside the group,
/// a rank taken already, or a size other than the first join's.
std::shared_ptr<communicator> join_shared_memory_group(const group_ticket& ticket);

}  // namespace glm4::kernels::comm
