// The emulated NCCL's collectives, sends and receives: their results, groups, mismatches, faults, graph capture.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_nccl_test_support.hpp"
#include "tests/kernels/emulated_cuda/emulated_nccl_types.hpp"

namespace glm4::test {
namespace {

using namespace emulated_nccl;

// emulated_nccl_types' reduce over one host vector per rank.
template <class T>
std::vector<T> reduced(ncclDataType_t type, ncclRedOp_t op, const std::vector<std::vector<T>>& inputs) {
  std::vector<std::vector<std::byte>> bytes;
  for (const std::vector<T>& input : inputs) {
    bytes.emplace_back(input.size() * sizeof(T));
    std::memcpy(bytes.back().data(), input.data(), bytes.back().size());
  }
  std::vector<T> out(inputs[0].size());
  emulated_cuda::nccl_types::reduce(type, op, bytes, reinterpret_cast<std::byte*>(out.data()), out.size());
  return out;
}

std::uint32_t bits_of(float value) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

}  // namespace

TEST_CASE("reductions combine the ranks' elements left to right, rounding to the type at every step",
          "[emulated_nccl]") {
  // Left to right: (1 + 1e8) rounds to 1e8, so the 1 is lost; (1e8 - 1e8) + 1 would keep it.
  CHECK(reduced<float>(ncclFloat32, ncclSum, {{1.0f}, {1.0e8f}, {-1.0e8f}}) == std::vector<float>{0.0f});
  // 1 + 2^-8 is a tie in bfloat16 and rounds to 1 each time; in float the sum would be 1 + 2^-7.
  const float tiny = 1.0f / 256.0f;
  const auto bf16_sum = reduced<__nv_bfloat16>(
      ncclBfloat16, ncclSum, {{__float2bfloat16(1.0f)}, {__float2bfloat16(tiny)}, {__float2bfloat16(tiny)}});
  CHECK(__bfloat162float(bf16_sum[0]) == 1.0f);
  CHECK(reduced<std::int8_t>(ncclInt8, ncclSum, {{100}, {100}}) == std::vector<std::int8_t>{-56});  // wraps
  CHECK(reduced<std::int32_t>(ncclInt32, ncclAvg, {{3, -8}, {4, 1}}) == std::vector<std::int32_t>{3, -3});
  CHECK(reduced<float>(ncclFloat32, ncclAvg, {{1.0f}, {2.0f}}) == std::vector<float>{1.5f});
  CHECK(reduced<std::uint32_t>(ncclUint32, ncclMax, {{1, 9}, {7, 2}}) == std::vector<std::uint32_t>{7, 9});
  CHECK(reduced<double>(ncclFloat64, ncclMin, {{1.5, -2.0}, {0.5, 3.0}}) == std::vector<double>{0.5, -2.0});
  CHECK(reduced<std::int64_t>(ncclInt64, ncclProd, {{3}, {-5}, {2}}) == std::vector<std::int64_t>{-30});
  CHECK_THROWS_AS(reduced<float>(static_cast<ncclDataType_t>(ncclNumTypes), ncclSum, {{1.0f}}), std::logic_error);
}

TEST_CASE("ncclAllReduce gives every rank the same bits, in place or not", "[emulated_nccl]") {
  require_two_gpus();
  two_comms comms;
  constexpr std::size_t n = 257;
  // Made once: the compiler may fuse a*b+c differently where an expression is inlined twice.
  std::vector<float> inputs[2];
  for (int rank = 0; rank < 2; ++rank)
    for (std::size_t i = 0; i < n; ++i)
      inputs[rank].push_back((rank == 0 ? 1.0e8f : 1.0f) / static_cast<float>(i + 3) + static_cast<float>(i) * 0.001f);
  const auto input = [&](int rank, std::size_t i) { return inputs[rank][i]; };
  struct seen {
    std::vector<float> in_place, out_of_place, send_after;
    std::vector<std::int32_t> max;
  };
  const auto results = on_two_ranks([&](int rank) {
    rank_gpu gpu(rank);
    std::vector<float> values(n);
    for (std::size_t i = 0; i < n; ++i) values[i] = input(rank, i);
    float* x = gpu.upload(values);
    NCCL_OK(ncclAllReduce(x, x, n, ncclFloat, ncclSum, comms[rank], gpu.stream()));
    float* send = gpu.upload(values);
    float* recv = gpu.alloc<float>(n);
    NCCL_OK(ncclAllReduce(send, recv, n, ncclFloat32, ncclSum, comms[rank], gpu.stream()));
    std::int32_t* ints = gpu.upload(std::vector<std::int32_t>{rank == 0 ? 5 : -7, rank == 0 ? -1 : 40});
    NCCL_OK(ncclAllReduce(ints, ints, 2, ncclInt32, ncclMax, comms[rank], gpu.stream()));
    return seen{rank_gpu::read(x, n), rank_gpu::read(recv, n), rank_gpu::read(send, n), rank_gpu::read(ints, 2)};
  });
  for (std::size_t i = 0; i < n; ++i) {
    const float want = input(0, i) + input(1, i);
    REQUIRE(bits_of(results[0].in_place[i]) == bits_of(want));
    REQUIRE(bits_of(results[1].in_place[i]) == bits_of(want));
    REQUIRE(bits_of(results[0].out_of_place[i]) == bits_of(want));
    REQUIRE(bits_of(results[1].out_of_place[i]) == bits_of(want));
    REQUIRE(results[1].send_after[i] == input(1, i));  // the input stays as it was
  }
  CHECK(results[0].max == std::vector<std::int32_t>{5, 40});
  CHECK(results[1].max == results[0].max);
}

TEST_CASE("ncclAllGather, ncclBroadcast, ncclReduce and ncclReduceScatter lay results out in rank order",
          "[emulated_nccl]") {
  require_two_gpus();
  two_comms comms;
  struct seen {
    std::vector<std::int32_t> gathered, gathered_in_place, broadcast, bcast, reduced, scattered;
  };
  const auto results = on_two_ranks([&](int rank) {
    rank_gpu gpu(rank);
    ncclComm_t comm = comms[rank];
    const std::int32_t base = 10 * rank;
    seen s;
    std::int32_t* part = gpu.upload(std::vector<std::int32_t>{base, base + 1, base + 2});
    std::int32_t* all = gpu.alloc<std::int32_t>(6);
    NCCL_OK(ncclAllGather(part, all, 3, ncclInt32, comm, gpu.stream()));
    s.gathered = rank_gpu::read(all, 6);

    std::int32_t* in_place = gpu.upload(std::vector<std::int32_t>(6, -1));
    rank_gpu::write(in_place + 3 * rank, std::vector<std::int32_t>{base + 5, base + 6, base + 7});
    NCCL_OK(ncclAllGather(in_place + 3 * rank, in_place, 3, ncclInt32, comm, gpu.stream()));
    s.gathered_in_place = rank_gpu::read(in_place, 6);

    std::int32_t* from = gpu.upload(std::vector<std::int32_t>{base + 1, base + 2});
    std::int32_t* to = gpu.upload(std::vector<std::int32_t>{-1, -1});
    NCCL_OK(ncclBroadcast(from, to, 2, ncclInt32, 1, comm, gpu.stream()));
    s.broadcast = rank_gpu::read(to, 2);
    NCCL_OK(ncclBcast(from, 2, ncclInt32, 0, comm, gpu.stream()));
    s.bcast = rank_gpu::read(from, 2);

    std::int32_t* reduced = gpu.upload(std::vector<std::int32_t>{-1, -1, -1});
    NCCL_OK(ncclReduce(part, reduced, 3, ncclInt32, ncclSum, 0, comm, gpu.stream()));
    s.reduced = rank_gpu::read(reduced, 3);

    std::int32_t* four = gpu.upload(std::vector<std::int32_t>{base, base + 1, base + 2, base + 3});
    std::int32_t* mine = gpu.alloc<std::int32_t>(2);
    NCCL_OK(ncclReduceScatter(four, mine, 2, ncclInt32, ncclSum, comm, gpu.stream()));
    s.scattered = rank_gpu::read(mine, 2);
    return s;
  });
  for (const seen& s : results) {
    CHECK(s.gathered == std::vector<std::int32_t>{0, 1, 2, 10, 11, 12});
    CHECK(s.gathered_in_place == std::vector<std::int32_t>{5, 6, 7, 15, 16, 17});
    CHECK(s.broadcast == std::vector<std::int32_t>{11, 12});
    CHECK(s.bcast == std::vector<std::int32_t>{1, 2});
  }
  CHECK(results[0].reduced == std::vector<std::int32_t>{10, 12, 14});
  CHECK(results[1].reduced == std::vector<std::int32_t>{-1, -1, -1});  // only the root receives
  CHECK(results[0].scattered == std::vector<std::int32_t>{10, 12});
  CHECK(results[1].scattered == std::vector<std::int32_t>{14, 16});
}

TEST_CASE("ncclSend and ncclRecv meet their peer's matching call; a group holds its calls until its end",
          "[emulated_nccl]") {
  require_two_gpus();
  two_comms comms;
  struct seen {
    std::vector<float> swapped, first, second;
  };
  const auto results = on_two_ranks([&](int rank) {
    rank_gpu gpu(rank);
    ncclComm_t comm = comms[rank];
    const int peer = 1 - rank;
    const float base = static_cast<float>(100 * rank);
    float* out = gpu.upload(std::vector<float>{base, base + 1, base + 2});
    float* in = gpu.alloc<float>(3);
    // Each sends before it receives: without the group both sends would wait for a receive.
    NCCL_OK(ncclGroupStart());
    NCCL_OK(ncclGroupStart());  // nested: held until the outermost end
    NCCL_OK(ncclSend(out, 3, ncclFloat, peer, comm, gpu.stream()));
    NCCL_OK(ncclGroupEnd());
    NCCL_OK(ncclRecv(in, 3, ncclFloat, peer, comm, gpu.stream()));
    NCCL_OK(ncclGroupEnd());
    seen s{rank_gpu::read(in, 3), {}, {}};

    // Rank 0 receives twice from rank 1 in one group: the k-th receive gets the k-th send.
    float* first = gpu.alloc<float>(2);
    float* second = gpu.alloc<float>(1);
    if (rank == 1) {
      NCCL_OK(ncclSend(out, 2, ncclFloat, 0, comm, gpu.stream()));
      NCCL_OK(ncclSend(out + 2, 1, ncclFloat, 0, comm, gpu.stream()));
    } else {
      NCCL_OK(ncclGroupStart());
      NCCL_OK(ncclRecv(first, 2, ncclFloat, 1, comm, gpu.stream()));
      NCCL_OK(ncclRecv(second, 1, ncclFloat, 1, comm, gpu.stream()));
      NCCL_OK(ncclGroupEnd());
      s.first = rank_gpu::read(first, 2);
      s.second = rank_gpu::read(second, 1);
    }
    return s;
  });
  CHECK(results[0].swapped == std::vector<float>{100, 101, 102});
  CHECK(results[1].swapped == std::vector<float>{0, 1, 2});
  CHECK(results[0].first == std::vector<float>{100, 101});
  CHECK(results[0].second == std::vector<float>{102});
}

TEST_CASE("one thread drives both ranks inside a group, as with ncclCommInitAll", "[emulated_nccl]") {
  require_two_gpus();
  two_comms comms;
  rank_gpu gpu0(0), gpu1(1);
  float* x0 = gpu0.upload(std::vector<float>{1, 2});
  float* x1 = gpu1.upload(std::vector<float>{10, 20});
  float* sent = gpu0.upload(std::vector<float>{5});
  float* received = gpu1.alloc<float>(1);
  REQUIRE(ncclGroupStart() == ncclSuccess);
  CHECK(ncclAllReduce(x0, x0, 2, ncclFloat, ncclSum, comms[0], gpu0.stream()) == ncclSuccess);
  CHECK(ncclAllReduce(x1, x1, 2, ncclFloat, ncclSum, comms[1], gpu1.stream()) == ncclSuccess);
  CHECK(ncclSend(sent, 1, ncclFloat, 1, comms[0], gpu0.stream()) == ncclSuccess);
  CHECK(ncclRecv(received, 1, ncclFloat, 0, comms[1], gpu1.stream()) == ncclSuccess);
  REQUIRE(ncclGroupEnd() == ncclSuccess);
  CHECK(rank_gpu::read(x0, 2) == std::vector<float>{11, 22});
  CHECK(rank_gpu::read(x1, 2) == std::vector<float>{11, 22});
  CHECK(rank_gpu::read(received, 1) == std::vector<float>{5});

  // A call refused inside a group fails the group, which then launches nothing.
  REQUIRE(ncclGroupStart() == ncclSuccess);
  CHECK(ncclAllReduce(x0, x0, 2, ncclFloat, ncclSum, comms[0], gpu0.stream()) == ncclSuccess);
  CHECK(ncclSend(x0, 1, ncclFloat, 2, comms[0], gpu0.stream()) == ncclInvalidArgument);
  CHECK(ncclGroupEnd() == ncclInvalidArgument);
  CHECK(rank_gpu::read(x0, 2) == std::vector<float>{11, 22});
  CHECK(cudaSetDevice(0) == cudaSuccess);
}

TEST_CASE("calls that differ across ranks fail on every rank instead of hanging, and abort the communicator",
          "[emulated_nccl]") {
  require_two_gpus();
  two_comms collective_comms, p2p_comms;
  struct seen {
    std::string collective, p2p;
    ncclResult_t after = ncclSuccess;
    std::string after_error;
  };
  const auto results = on_two_ranks([&](int rank) {
    rank_gpu gpu(rank);
    float* x = gpu.upload(std::vector<float>(8, static_cast<float>(rank + 1)));
    seen s;
    s.collective = thrown_by([&] {
      if (rank == 0) NCCL_OK(ncclAllReduce(x, x, 4, ncclFloat, ncclSum, collective_comms[0], gpu.stream()));
      else NCCL_OK(ncclAllGather(x, x, 4, ncclFloat, collective_comms[1], gpu.stream()));
    });
    s.p2p = thrown_by([&] {
      if (rank == 0) NCCL_OK(ncclSend(x, 4, ncclFloat, 1, p2p_comms[0], gpu.stream()));
      else NCCL_OK(ncclRecv(x, 5, ncclFloat, 0, p2p_comms[1], gpu.stream()));
    });
    s.after = ncclAllReduce(x, x, 1, ncclFloat, ncclSum, collective_comms[rank], gpu.stream());
    s.after_error = ncclGetLastError(nullptr);
    return s;
  });
  for (const seen& s : results) {
    CHECK_THAT(s.collective, Catch::Contains("differ") &&
                                 Catch::Contains("ncclAllReduce(count 4, ncclFloat32, ncclSum)") &&
                                 Catch::Contains("ncclAllGather(count 4, ncclFloat32)"));
    CHECK_THAT(s.p2p, Catch::Contains("count 4") && Catch::Contains("count 5") && Catch::Contains("does not match"));
    CHECK(s.after == ncclInvalidUsage);  // the mismatch aborted the communicator
    CHECK_THAT(s.after_error, Catch::Contains("aborted communicator") && Catch::Contains("differ"));
  }
}

TEST_CASE("buffers that are not the rank's GPU memory fault and abort the communicator; a stream of another GPU "
          "is refused",
          "[emulated_nccl]") {
  require_two_gpus();
  rank_gpu gpu0(0), gpu1(1);
  float* on_gpu0 = gpu0.upload(std::vector<float>{1, 2, 3, 4});
  float* on_gpu1 = gpu1.upload(std::vector<float>{1, 2, 3, 4});
  std::vector<float> host(4);
  // What `call` throws on rank 0 of new communicators, and what rank 1 then learns of them.
  const auto fault = [](const std::function<void(ncclComm_t)>& call) {
    two_comms comms;
    const std::string thrown = thrown_by([&] { call(comms[0]); });
    ncclResult_t state = ncclSuccess;
    NCCL_OK(ncclCommGetAsyncError(comms[1], &state));
    return std::pair(thrown, state);
  };
  const auto [peer_memory, peer_memory_state] = fault([&](ncclComm_t comm) {
    ncclAllReduce(on_gpu1, on_gpu1, 4, ncclFloat, ncclSum, comm, gpu0.stream());
  });
  CHECK_THAT(peer_memory, Catch::Contains("rank 0 (GPU 0)") && Catch::Contains("is memory of GPU 1"));
  CHECK(peer_memory_state == ncclRemoteError);
  const auto [host_memory, host_memory_state] =
      fault([&](ncclComm_t comm) { ncclAllGather(on_gpu0, host.data(), 2, ncclFloat, comm, gpu0.stream()); });
  CHECK_THAT(host_memory, Catch::Contains("recvbuff") && Catch::Contains("no cudaMalloc allocation"));
  CHECK(host_memory_state == ncclRemoteError);
  const auto [past_end, past_end_state] =
      fault([&](ncclComm_t comm) { ncclSend(on_gpu0, 5, ncclFloat, 1, comm, gpu0.stream()); });
  CHECK_THAT(past_end, Catch::Contains("runs past the end"));
  CHECK(past_end_state == ncclRemoteError);

  // A refused call is no fault: it takes no place in the sequence of calls, and the ranks' next calls meet.
  two_comms comms;
  CHECK(ncclAllReduce(on_gpu0, on_gpu0, 4, ncclFloat, ncclSum, comms[0], gpu1.stream()) == ncclInvalidArgument);
  CHECK_THAT(ncclGetLastError(nullptr), Catch::Contains("the stream is GPU 1's"));
  const auto sums = on_two_ranks([&](int rank) {
    rank_gpu& gpu = rank == 0 ? gpu0 : gpu1;
    float* x = rank == 0 ? on_gpu0 : on_gpu1;
    CUDA_OK(cudaSetDevice(rank));
    NCCL_OK(ncclAllReduce(x, x, 4, ncclFloat, ncclSum, comms[rank], gpu.stream()));
    return rank_gpu::read(x, 4);
  });
  CHECK(sums[0] == std::vector<float>{2, 4, 6, 8});
  CHECK(sums[1] == sums[0]);
  CHECK(cudaSetDevice(0) == cudaSuccess);
}

TEST_CASE("a collective captured in a CUDA graph exchanges anew at each launch, with the buffers then",
          "[emulated_nccl]") {
  require_two_gpus();
  two_comms comms;
  struct seen {
    std::vector<float> after_capture;
    std::vector<std::vector<float>> launches;
  };
  const auto results = on_two_ranks([&](int rank) {
    rank_gpu gpu(rank);
    ncclComm_t comm = comms[rank];
    const int peer = 1 - rank;
    float* x = gpu.upload(std::vector<float>{-1, -1});
    float* from_peer = gpu.alloc<float>(1);
    CUDA_OK(cudaStreamBeginCapture(gpu.stream(), cudaStreamCaptureModeThreadLocal));
    NCCL_OK(ncclAllReduce(x, x, 2, ncclFloat, ncclSum, comm, gpu.stream()));
    NCCL_OK(ncclGroupStart());
    NCCL_OK(ncclSend(x, 1, ncclFloat, peer, comm, gpu.stream()));
    NCCL_OK(ncclRecv(from_peer, 1, ncclFloat, peer, comm, gpu.stream()));
    NCCL_OK(ncclGroupEnd());
    cudaGraph_t graph = nullptr;
    CUDA_OK(cudaStreamEndCapture(gpu.stream(), &graph));
    cudaGraphExec_t exec = nullptr;
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    seen s{rank_gpu::read(x, 2), {}};
    for (int launch = 1; launch <= 3; ++launch) {
      rank_gpu::write(x, std::vector<float>{static_cast<float>(100 * rank + launch), static_cast<float>(rank)});
      CUDA_OK(cudaGraphLaunch(exec, gpu.stream()));
      std::vector<float> result = rank_gpu::read(x, 2);
      result.push_back(rank_gpu::read(from_peer, 1)[0]);
      s.launches.push_back(result);
    }
    CUDA_OK(cudaGraphExecDestroy(exec));
    CUDA_OK(cudaGraphDestroy(graph));
    return s;
  });
  for (const seen& s : results) {
    CHECK(s.after_capture == std::vector<float>{-1, -1});  // capturing exchanged nothing
    REQUIRE(s.launches.size() == 3);
    for (int launch = 1; launch <= 3; ++launch) {
      const float sum = static_cast<float>(100 + 2 * launch);
      CHECK(s.launches[static_cast<std::size_t>(launch - 1)] == std::vector<float>{sum, 1, sum});
    }
  }
}

}  // namespace glm4::test
