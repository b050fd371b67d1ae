// The emulated NCCL's groups: ncclGroupStart and ncclGroupEnd, and the calls held between them, per thread.
#include "tests/kernels/emulated_cuda/emulated_nccl_groups.hpp"

#include <string>
#include <utility>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_runtime.hpp"

namespace glm4::emulated_cuda::nccl {
namespace {

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

ncclResult_t enqueued(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return ncclSuccess;
  return refuse(ncclUnhandledCudaError,
                std::string(call) + ": the stream refused the work: " + cudaGetErrorString(status));
}

using cliques = std::vector<std::shared_ptr<nccl_clique>>;

// One step of a group's work, which aborts all the group's communicators if it throws: a fault ends the GPU's
// context, and the group's other ranks would otherwise wait for work of this thread that never comes.
template <class Step>
std::function<void()> group_step(std::shared_ptr<const cliques> touched, Step step) {
  return [touched = std::move(touched), step] {
    try {
      step();
    } catch (const std::exception& error) {
      for (const std::shared_ptr<nccl_clique>& c : *touched) abort_clique(*c, error.what());
      throw;
    }
  };
}

// The group's calls arrive at their meetings in order, then wait for them in order.
ncclResult_t end_group() {
  if (group.depth == 0) return refuse(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
  if (--group.depth > 0) return ncclSuccess;
  const std::vector<held_call> held = std::move(group.held);
  group.held.clear();
  if (const ncclResult_t refused = std::exchange(group.error, ncclSuccess); refused != ncclSuccess)
    return refused;  // NCCL launches nothing of a group with a refused call
  auto touched = std::make_shared<cliques>();
  for (const held_call& call : held)
    if (call.work) touched->push_back(call.work->members());
  ncclResult_t status = ncclSuccess;
  const auto note = [&](ncclResult_t call_status) {
    if (status == ncclSuccess) status = call_status;
  };
  for (const held_call& call : held)
    if (call.work)
      note(enqueued(try_enqueue(call.stream, group_step(touched, [work = call.work] { work->arrive(); })),
                    "ncclGroupEnd"));
  for (const held_call& call : held)
    note(call.work ? enqueued(try_enqueue(call.stream, group_step(touched, [work = call.work] { work->finish(); })),
                              "ncclGroupEnd")
                   : call.settle());
  return status;
}

void begin_group() { ++group.depth; }

}  // namespace

bool in_group() { return group.depth > 0; }

void hold_until_group_end(std::function<ncclResult_t()> settle) {
  group.held.push_back({nullptr, nullptr, std::move(settle)});
}

ncclResult_t noted(ncclResult_t status) {
  if (status != ncclSuccess && status != ncclInProgress && group.depth > 0 && group.error == ncclSuccess)
    group.error = status;
  return status;
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

}  // namespace glm4::emulated_cuda::nccl

using namespace glm4::emulated_cuda::nccl;

extern "C" {

ncclResult_t ncclGroupStart() {
  begin_group();
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd() { return end_group(); }

}  // extern "C"
