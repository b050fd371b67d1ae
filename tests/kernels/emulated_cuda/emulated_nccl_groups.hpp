// The emulated NCCL's groups: calls a thread makes after ncclGroupStart, held until its outermost ncclGroupEnd.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <functional>
#include <memory>

#include "tests/kernels/emulated_cuda/emulated_nccl_meetings.hpp"

namespace glm4::emulated_cuda::nccl {

/// Whether this thread is inside ncclGroupStart ... ncclGroupEnd.
bool in_group();

/// Holds the wait of an init or split made inside a group; the group's end runs it, after the stream work.
void hold_until_group_end(std::function<ncclResult_t()> settle);

/// Returns `status`; a refusal inside a group is also the group's (its ncclGroupEnd returns it and launches
/// nothing).
ncclResult_t noted(ncclResult_t status);

/// A collective's or a send's or receive's stream work: held inside a group, else enqueued on `stream` now
/// (arriving and finishing at once). ncclUnhandledCudaError when the stream refuses it.
ncclResult_t issue(const char* call, cudaStream_t stream, std::shared_ptr<exchange> work);

}  // namespace glm4::emulated_cuda::nccl
