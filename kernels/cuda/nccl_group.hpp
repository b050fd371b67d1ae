// Collectives among the GPUs of one pipeline stage through NCCL. Every collective is enqueued on
// the rank's backend stream, so it is ordered with the kernels before and after it without a
// host sync; only gather_columns (widths) and broadcast_host (host values) wait for the stream.
// This header includes no CUDA or NCCL header.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "kernels/comm/communicator.hpp"
#include "kernels/cuda/cuda_backend.hpp"

namespace glm4::kernels::cuda {

/// Whether this build links NCCL (tensor parallel across GPUs needs it).
bool have_nccl();

/// One communicator per backend (one GPU each; rank i for backends[i]), made together in this
/// process (ncclCommInitAll). Aborting any of them aborts them all. Throws std::runtime_error
/// naming NCCL's error, or saying that this build has no NCCL.
std::vector<std::shared_ptr<comm::communicator>> make_nccl_group(std::span<cuda_backend* const> backends);

/// A new ncclUniqueId as bytes, for the tickets of one group (made once, by one rank's process).
std::vector<std::uint8_t> make_nccl_group_id();

/// This backend's communicator as rank ticket.rank of ticket.size (a nonblocking ncclCommInitRank
/// from NCCL 2.14 on): returns once every rank, in this process or another, has joined with the
/// same id. It gives up after five minutes, or as soon as a rank of this process fails to join;
/// either way the ranks of this process waiting with that id throw the reason. The ranks of one
/// group that live in this process share its abort; ranks elsewhere see their collectives fail.
std::shared_ptr<comm::communicator> join_nccl_group(cuda_backend& backend, const comm::group_ticket& ticket);

}  // namespace glm4::kernels::cuda
