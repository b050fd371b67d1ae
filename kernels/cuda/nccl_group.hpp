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

}  // namespace glm4::kernels::cuda
