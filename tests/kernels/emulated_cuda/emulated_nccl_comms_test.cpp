// The emulated NCCL's communicators: joining, splitting, aborting, and the aborts faults cause (GLM4_EMULATED_GPUS=2).
#include <cuda_runtime.h>
#include <nccl.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_nccl.hpp"
#include "tests/kernels/emulated_cuda/emulated_nccl_test_support.hpp"

namespace glm4::test {

using namespace emulated_nccl;

TEST_CASE("blocking ncclCommInitRank returns once every rank has joined; bad joins are refused", "[emulated_nccl]") {
  require_two_gpus();
  int version = 0;
  CHECK(ncclGetVersion(&version) == ncclSuccess);
  CHECK(version == NCCL_VERSION_CODE);
  const ncclUniqueId id = new_id(), other = new_id();
  CHECK(std::memcmp(id.internal, other.internal, sizeof id.internal) != 0);

  const auto joined = on_two_ranks([&](int rank) {
    CUDA_OK(cudaSetDevice(rank));
    ncclComm_t comm = nullptr;
    NCCL_OK(ncclCommInitRank(&comm, 2, id, rank));
    int count = 0, user_rank = -1, device = -1;
    NCCL_OK(ncclCommCount(comm, &count));
    NCCL_OK(ncclCommUserRank(comm, &user_rank));
    NCCL_OK(ncclCommCuDevice(comm, &device));
    NCCL_OK(ncclCommFinalize(comm));
    NCCL_OK(ncclCommDestroy(comm));
    return std::tuple(count, user_rank, device);
  });
  CHECK(joined[0] == std::tuple(2, 0, 0));
  CHECK(joined[1] == std::tuple(2, 1, 1));

  ncclComm_t comm = nullptr;
  CHECK(ncclCommInitRank(&comm, 2, other, 2) == ncclInvalidArgument);
  CHECK(comm == nullptr);
  CHECK(ncclCommInitRank(&comm, 0, other, 0) == ncclInvalidArgument);
  ncclUniqueId forged{};
  CHECK(ncclCommInitRank(&comm, 2, forged, 0) == ncclInvalidArgument);
  CHECK_THAT(ncclGetLastError(nullptr), Catch::Contains("ncclGetUniqueId"));
  ncclConfig_t garbage{};
  CHECK(ncclCommInitRankConfig(&comm, 2, other, 0, &garbage) == ncclInvalidArgument);

  // Rank 0 of `other` joins, then joins again, then a rank counts differently; rank 0 gives up.
  CHECK(cudaSetDevice(0) == cudaSuccess);
  ncclConfig_t nonblocking = config_of(0);
  ncclComm_t first = nullptr, again = nullptr;
  REQUIRE(ncclCommInitRankConfig(&first, 2, other, 0, &nonblocking) == ncclInProgress);
  CHECK(ncclCommInitRankConfig(&again, 2, other, 0, &nonblocking) == ncclInvalidArgument);
  CHECK_THAT(ncclGetLastError(nullptr), Catch::Contains("twice"));
  CHECK(ncclCommInitRankConfig(&again, 3, other, 1, &nonblocking) == ncclInvalidArgument);
  CHECK(ncclCommAbort(first) == ncclSuccess);
  CHECK(cudaSetDevice(1) == cudaSuccess);
  CHECK(ncclCommInitRank(&again, 2, other, 1) == ncclRemoteError);  // a late rank learns of the abort
  CHECK(again == nullptr);

  // Two ranks on one GPU are refused, as NCCL does.
  const ncclUniqueId shared = new_id();
  const auto statuses = on_two_ranks([&](int rank) {
    CUDA_OK(cudaSetDevice(0));
    ncclComm_t mine = nullptr;
    const ncclResult_t status = ncclCommInitRank(&mine, 2, shared, rank);
    ncclCommDestroy(mine);
    return status;
  });
  CHECK(statuses == std::vector<ncclResult_t>{ncclInvalidUsage, ncclInvalidUsage});
  ncclComm_t pair[2] = {nullptr, nullptr};
  const int same_gpu[2] = {0, 0}, no_gpu[2] = {0, 8};
  CHECK(ncclCommInitAll(pair, 2, same_gpu) == ncclInvalidUsage);
  CHECK(ncclCommInitAll(pair, 2, no_gpu) == ncclInvalidArgument);
  CHECK(std::string(ncclGetErrorString(ncclInvalidUsage)) == "invalid usage");
  CHECK(cudaSetDevice(0) == cudaSuccess);
}

TEST_CASE("a nonblocking ncclCommInitRankConfig is in progress until every rank has joined", "[emulated_nccl]") {
  require_two_gpus();
  const ncclUniqueId id = new_id();
  ncclConfig_t nonblocking = config_of(0);
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  ncclComm_t first = nullptr;
  REQUIRE(ncclCommInitRankConfig(&first, 2, id, 0, &nonblocking) == ncclInProgress);
  REQUIRE(first != nullptr);
  ncclResult_t state = ncclSuccess;
  CHECK(ncclCommGetAsyncError(first, &state) == ncclSuccess);
  CHECK(state == ncclInProgress);
  CHECK(ncclAllReduce(nullptr, nullptr, 0, ncclFloat, ncclSum, first, nullptr) == ncclInvalidUsage);  // not ready

  // Rank 1 blocks (the default config) but finds rank 0 in already.
  ncclComm_t second = std::async(std::launch::async, [&] {
                        CUDA_OK(cudaSetDevice(1));
                        ncclComm_t comm = nullptr;
                        ncclConfig_t blocking = NCCL_CONFIG_INITIALIZER;
                        NCCL_OK(ncclCommInitRankConfig(&comm, 2, id, 1, &blocking));
                        return comm;
                      }).get();
  CHECK(ncclCommGetAsyncError(first, &state) == ncclSuccess);
  CHECK(state == ncclSuccess);
  CHECK(ncclCommDestroy(first) == ncclSuccess);
  CHECK(ncclCommDestroy(second) == ncclSuccess);

  // Both nonblocking, each polling until its communicator is ready, as join_nccl_group does.
  const ncclUniqueId polled = new_id();
  const auto polls = on_two_ranks([&](int rank) {
    CUDA_OK(cudaSetDevice(rank));
    ncclConfig_t config = config_of(0);
    ncclComm_t comm = nullptr;
    ncclResult_t status = ncclCommInitRankConfig(&comm, 2, polled, rank, &config);
    const ncclResult_t returned = status;
    while (status == ncclInProgress) {
      std::this_thread::yield();
      NCCL_OK(ncclCommGetAsyncError(comm, &status));
    }
    NCCL_OK(status);
    NCCL_OK(ncclCommDestroy(comm));
    return returned;
  });
  CHECK(polls == std::vector<ncclResult_t>{ncclInProgress, ncclInProgress});
  CHECK(ncclGroupEnd() == ncclInvalidUsage);  // without ncclGroupStart
}

TEST_CASE("ncclCommSplit makes a communicator per color, ranks ordered by key, none for NCCL_SPLIT_NOCOLOR",
          "[emulated_nccl]") {
  require_two_gpus();
  two_comms parent;
  struct seen {
    int alone_count, alone_rank, alone_device;
    int swapped_rank;
    float swapped_sum;
    bool left_out;
    int nonblocking_rank;
  };
  const auto results = on_two_ranks([&](int rank) {
    rank_gpu gpu(rank);
    seen s{};
    ncclComm_t alone = nullptr, swapped = nullptr, maybe = nullptr, nonblocking = nullptr;
    NCCL_OK(ncclCommSplit(parent[rank], rank, 0, &alone, nullptr));
    NCCL_OK(ncclCommCount(alone, &s.alone_count));
    NCCL_OK(ncclCommUserRank(alone, &s.alone_rank));
    NCCL_OK(ncclCommCuDevice(alone, &s.alone_device));

    ncclConfig_t blocking = config_of(1);
    NCCL_OK(ncclCommSplit(parent[rank], 0, -rank, &swapped, &blocking));
    NCCL_OK(ncclCommUserRank(swapped, &s.swapped_rank));
    float* x = gpu.upload(std::vector<float>{static_cast<float>(rank + 1)});
    NCCL_OK(ncclAllReduce(x, x, 1, ncclFloat, ncclSum, swapped, gpu.stream()));
    s.swapped_sum = rank_gpu::read(x, 1)[0];

    NCCL_OK(ncclCommSplit(parent[rank], rank == 1 ? NCCL_SPLIT_NOCOLOR : 7, 0, &maybe, nullptr));
    s.left_out = maybe == nullptr;

    ncclConfig_t config = config_of(0);
    ncclResult_t status = ncclCommSplit(parent[rank], 0, rank, &nonblocking, &config);
    while (status == ncclInProgress) NCCL_OK(ncclCommGetAsyncError(nonblocking, &status));
    NCCL_OK(status);
    NCCL_OK(ncclCommUserRank(nonblocking, &s.nonblocking_rank));
    for (ncclComm_t comm : {alone, swapped, maybe, nonblocking}) NCCL_OK(ncclCommDestroy(comm));
    return s;
  });
  for (int rank = 0; rank < 2; ++rank) {
    const seen& s = results[static_cast<std::size_t>(rank)];
    CHECK(s.alone_count == 1);
    CHECK(s.alone_rank == 0);
    CHECK(s.alone_device == rank);
    CHECK(s.swapped_rank == 1 - rank);
    CHECK(s.swapped_sum == 3.0f);
    CHECK(s.left_out == (rank == 1));
    CHECK(s.nonblocking_rank == rank);
  }
}

TEST_CASE("ncclCommAbort releases a rank blocked in a collective or in a blocking init", "[emulated_nccl]") {
  require_two_gpus();
  two_comms comms;
  auto blocked = std::async(std::launch::async, [&] {
    rank_gpu gpu(0);
    float* x = gpu.upload(std::vector<float>{1, 2});
    return ncclAllReduce(x, x, 2, ncclFloat, ncclSum, comms[0], gpu.stream());  // rank 1 never calls it
  });
  glm4::emulated_cuda::wait_for_blocked_calls(comms[0], 1);
  CHECK(ncclCommAbort(comms[1]) == ncclSuccess);
  comms.comms[1] = nullptr;
  CHECK(blocked.get() == ncclSuccess);  // the call ends; its result is whatever the killed kernel left
  rank_gpu gpu0(0);
  float* y = gpu0.alloc<float>(1);
  CHECK(ncclAllReduce(y, y, 1, ncclFloat, ncclSum, comms[0], gpu0.stream()) == ncclInvalidUsage);
  ncclResult_t state = ncclSuccess;
  CHECK(ncclCommGetAsyncError(comms[0], &state) == ncclSuccess);
  CHECK(state == ncclRemoteError);

  // Rank 0 of three waits in a blocking init; rank 1 joins without blocking, then aborts.
  const ncclUniqueId id = new_id();
  auto joining = std::async(std::launch::async, [&] {
    CUDA_OK(cudaSetDevice(0));
    ncclComm_t comm = nullptr;
    const ncclResult_t status = ncclCommInitRank(&comm, 3, id, 0);
    return std::pair(status, comm);
  });
  REQUIRE(cudaSetDevice(1) == cudaSuccess);
  ncclConfig_t nonblocking = config_of(0);
  ncclComm_t second = nullptr;
  REQUIRE(ncclCommInitRankConfig(&second, 3, id, 1, &nonblocking) == ncclInProgress);
  glm4::emulated_cuda::wait_for_blocked_calls(second, 1);
  CHECK(ncclCommAbort(second) == ncclSuccess);
  const auto [status, comm] = joining.get();
  CHECK(status == ncclRemoteError);
  CHECK(comm == nullptr);
  CHECK(cudaSetDevice(0) == cudaSuccess);
}

TEST_CASE("ncclCommAbort keeps the handle: a call made with it on the rank's own thread just then is refused",
          "[emulated_nccl]") {
  require_two_gpus();
  two_comms comms;
  // Rank 1's thread calls until refused, as a rank of nccl_group.cpp may while another thread aborts its group.
  auto rank1 = std::async(std::launch::async, [&] {
    rank_gpu gpu(1);
    float* x = gpu.upload(std::vector<float>{1, 2});
    std::vector<ncclResult_t> statuses;
    do {
      statuses.push_back(ncclAllReduce(x, x, 2, ncclFloat, ncclSum, comms[1], gpu.stream()));
    } while (statuses.back() == ncclSuccess && statuses.size() < 3);
    return std::pair(statuses, std::string(ncclGetLastError(nullptr)));
  });
  glm4::emulated_cuda::wait_for_blocked_calls(comms[0], 1);  // rank 1 waits for rank 0, which never calls
  CHECK(ncclCommAbort(comms[1]) == ncclSuccess);            // from this thread, on rank 1's handle
  const auto [statuses, error] = rank1.get();
  CHECK(statuses == std::vector<ncclResult_t>{ncclSuccess, ncclInvalidUsage});
  CHECK_THAT(error, Catch::Contains("handle its rank aborted"));

  // Every later call on the aborted handle is refused the same way.
  int value = -1;
  ncclResult_t state = ncclSuccess;
  ncclComm_t split = nullptr;
  CHECK(ncclCommCount(comms[1], &value) == ncclInvalidUsage);
  CHECK(ncclCommUserRank(comms[1], &value) == ncclInvalidUsage);
  CHECK(ncclCommCuDevice(comms[1], &value) == ncclInvalidUsage);
  CHECK(value == -1);
  CHECK(ncclCommGetAsyncError(comms[1], &state) == ncclInvalidUsage);
  CHECK(ncclCommSplit(comms[1], 0, 0, &split, nullptr) == ncclInvalidUsage);
  CHECK(split == nullptr);
  CHECK(ncclCommFinalize(comms[1]) == ncclInvalidUsage);
  CHECK(ncclCommAbort(comms[1]) == ncclInvalidUsage);
  CHECK(ncclCommDestroy(comms[1]) == ncclInvalidUsage);

  // Rank 0's handle is whole; its communicator is aborted.
  CHECK(ncclCommCount(comms[0], &value) == ncclSuccess);
  CHECK(value == 2);
  CHECK(ncclCommGetAsyncError(comms[0], &state) == ncclSuccess);
  CHECK(state == ncclRemoteError);
  CHECK_THAT(ncclGetLastError(nullptr), Catch::Contains("rank 1 called ncclCommAbort"));
  CHECK(cudaSetDevice(0) == cudaSuccess);
}

TEST_CASE("a rank whose collective faults aborts the communicator: its peer returns at once, not at the timeout",
          "[emulated_nccl]") {
  require_two_gpus();
  two_comms comms;
  rank_gpu other(0);
  float* on_gpu0 = other.upload(std::vector<float>{5, 6});  // rank 1's buffer, on the wrong GPU
  struct seen {
    ncclResult_t first = ncclSuccess;
    std::string thrown;
    ncclResult_t later = ncclSuccess;
    std::string later_error;
    ncclResult_t async = ncclSuccess;
  };
  const auto start = std::chrono::steady_clock::now();
  const auto results = on_two_ranks([&](int rank) {
    rank_gpu gpu(rank);
    float* x = gpu.upload(std::vector<float>{1, 2});
    seen s;
    if (rank == 0) {
      s.first = ncclAllReduce(x, x, 2, ncclFloat, ncclSum, comms[0], gpu.stream());  // waits for rank 1
    } else {
      glm4::emulated_cuda::wait_for_blocked_calls(comms[1], 1);  // until rank 0 waits in its ncclAllReduce
      s.thrown = thrown_by([&] { ncclAllReduce(on_gpu0, on_gpu0, 2, ncclFloat, ncclSum, comms[1], gpu.stream()); });
    }
    s.later = ncclAllReduce(x, x, 2, ncclFloat, ncclSum, comms[rank], gpu.stream());
    s.later_error = ncclGetLastError(nullptr);
    NCCL_OK(ncclCommGetAsyncError(comms[rank], &s.async));
    return s;
  });
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));  // the safety timeout is 120 s
  CHECK(results[0].first == ncclSuccess);  // released, as a killed kernel ends
  CHECK(results[0].thrown.empty());
  CHECK_THAT(results[1].thrown, Catch::Contains("rank 1 (GPU 1)") && Catch::Contains("is memory of GPU 0"));
  for (const seen& s : results) {
    CHECK(s.later == ncclInvalidUsage);
    CHECK_THAT(s.later_error, Catch::Contains("aborted communicator") && Catch::Contains("is memory of GPU 0"));
    CHECK(s.async == ncclRemoteError);
  }
  CHECK(cudaSetDevice(0) == cudaSuccess);
}

TEST_CASE("a fault in a group's work aborts every communicator of the group", "[emulated_nccl]") {
  require_two_gpus();
  two_comms faulty, bystander;
  rank_gpu gpu0(0);
  float* x = gpu0.upload(std::vector<float>{1, 2});
  std::vector<float> host(2);
  // Rank 1 of `bystander` waits for rank 0's part of the group, which never runs.
  auto waiting = std::async(std::launch::async, [&] {
    rank_gpu gpu1(1);
    float* y = gpu1.upload(std::vector<float>{3, 4});
    return ncclAllReduce(y, y, 2, ncclFloat, ncclSum, bystander[1], gpu1.stream());
  });
  glm4::emulated_cuda::wait_for_blocked_calls(bystander[0], 1);
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(ncclGroupStart() == ncclSuccess);
  CHECK(ncclAllReduce(host.data(), host.data(), 2, ncclFloat, ncclSum, faulty[0], gpu0.stream()) == ncclSuccess);
  CHECK(ncclAllReduce(x, x, 2, ncclFloat, ncclSum, bystander[0], gpu0.stream()) == ncclSuccess);
  CHECK_THROWS_WITH(ncclGroupEnd(), Catch::Contains("sendbuff") && Catch::Contains("no cudaMalloc allocation"));
  CHECK(waiting.get() == ncclSuccess);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
  for (ncclComm_t comm : {faulty[1], bystander[1]}) {
    ncclResult_t state = ncclSuccess;
    CHECK(ncclCommGetAsyncError(comm, &state) == ncclSuccess);
    CHECK(state == ncclRemoteError);
  }
  CHECK(ncclGroupEnd() == ncclInvalidUsage);  // the group ended, though its work threw
  CHECK(cudaSetDevice(0) == cudaSuccess);
}

}  // namespace glm4::test
