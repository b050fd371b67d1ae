// What the emulated NCCL (emulated_nccl_*.cpp) offers tests beyond NCCL's own API.
#pragma once

#include <nccl.h>

namespace glm4::emulated_cuda {

/// Returns once `count` calls wait in the communicator of `comm` (in a collective, a send or receive, a split
/// or a blocking init, on any of its ranks), or once that communicator is aborted: a test then knows a rank
/// to be blocked before it releases it. Throws std::runtime_error if that takes longer than two minutes.
void wait_for_blocked_calls(ncclComm_t comm, int count);

}  // namespace glm4::emulated_cuda
