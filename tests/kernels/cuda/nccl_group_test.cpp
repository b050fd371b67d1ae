// The NCCL collectives of a stage's GPUs (kernels/cuda/nccl_group) against host arithmetic, one
// thread per rank as device actors run them. Skipped with fewer than two GPUs or without NCCL.
#include <catch2/catch.hpp>

#include <cuda_runtime.h>

#include <functional>
#include <future>
#include <memory>
#include <vector>

#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/nccl_group.hpp"
#include "tests/kernels/cuda/gpu_test_support.hpp"

namespace glm4::kernels::cuda {
namespace {

bool have_two_gpus_or_skip() {
  if (!test::have_gpu_or_skip()) return false;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count < 2 || !have_nccl()) {
    WARN("GPU test skipped: needs two GPUs and NCCL (found " << count << " GPU(s), NCCL "
         << (have_nccl() ? "linked" : "not linked") << ")");
    return false;
  }
  return true;
}

struct two_ranks {
  std::vector<std::unique_ptr<cuda_backend>> backends;
  std::vector<std::shared_ptr<comm::communicator>> group;

  two_ranks() {
    for (int device = 0; device < 2; ++device) backends.push_back(std::make_unique<cuda_backend>(device));
    std::vector<cuda_backend*> raw{backends[0].get(), backends[1].get()};
    group = make_nccl_group(raw);
  }

  // body(rank) on one thread per rank; rethrows the first failure.
  void on_every_rank(const std::function<void(int)>& body) {
    std::vector<std::future<void>> ranks;
    for (int rank = 0; rank < 2; ++rank) ranks.push_back(std::async(std::launch::async, body, rank));
    for (auto& rank : ranks) rank.get();
  }

  tensor upload(int rank, const std::vector<float>& values, std::vector<std::int64_t> shape) {
    tensor t = backends[static_cast<std::size_t>(rank)]->alloc(dtype::f32, std::move(shape));
    backends[static_cast<std::size_t>(rank)]->upload(t, values.data());
    return t;
  }

  std::vector<float> download(int rank, const tensor& t) {
    std::vector<float> host(static_cast<std::size_t>(t.numel()));
    backends[static_cast<std::size_t>(rank)]->download(t, host.data());
    return host;
  }
};

}  // namespace

TEST_CASE("nccl all_reduce_sum gives both GPUs the same sum", "[cuda][nccl]") {
  if (!have_two_gpus_or_skip()) return;
  two_ranks ranks;
  CHECK(ranks.group[0]->memory() == device_kind::cuda);
  std::vector<std::vector<float>> results(2);
  ranks.on_every_rank([&](int rank) {
    std::vector<float> values(1000);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.5f + static_cast<float>(rank);
    tensor x = ranks.upload(rank, values, {10, 100});
    ranks.group[static_cast<std::size_t>(rank)]->all_reduce_sum(x);
    results[static_cast<std::size_t>(rank)] = ranks.download(rank, x);
  });
  CHECK(results[0] == results[1]);  // bit for bit
  for (std::size_t i = 0; i < results[0].size(); ++i) REQUIRE(results[0][i] == static_cast<float>(i) + 1.0f);
}

TEST_CASE("nccl gather_columns lays uneven column slices side by side on rank 0", "[cuda][nccl]") {
  if (!have_two_gpus_or_skip()) return;
  two_ranks ranks;
  const std::int64_t rows = 3, widths[2] = {5, 2};
  std::vector<float> gathered;
  ranks.on_every_rank([&](int rank) {
    const std::int64_t w = widths[rank];
    std::vector<float> local(static_cast<std::size_t>(rows * w));
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < w; ++c) local[static_cast<std::size_t>(r * w + c)] = static_cast<float>(rank * 100 + r * 10 + c);
    const tensor part = ranks.upload(rank, local, {rows, w});
    if (rank == 0) {
      tensor full = ranks.backends[0]->alloc(dtype::f32, {rows, widths[0] + widths[1]});
      ranks.group[0]->gather_columns(part, &full);
      gathered = ranks.download(0, full);
    } else {
      ranks.group[1]->gather_columns(part, nullptr);
      ranks.backends[1]->synchronize();
    }
  });
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < 7; ++c) {
      const float want = c < 5 ? static_cast<float>(r * 10 + c) : static_cast<float>(100 + r * 10 + (c - 5));
      CHECK(gathered[static_cast<std::size_t>(r * 7 + c)] == want);
    }
}

TEST_CASE("nccl broadcast_host hands rank 0's ids to rank 1, and an aborted group throws", "[cuda][nccl]") {
  if (!have_two_gpus_or_skip()) return;
  two_ranks ranks;
  std::vector<std::int32_t> received;
  ranks.on_every_rank([&](int rank) {
    std::vector<std::int32_t> ids = rank == 0 ? std::vector<std::int32_t>{7, 151551, 0, 42} : std::vector<std::int32_t>(4, -1);
    ranks.group[static_cast<std::size_t>(rank)]->broadcast_host(ids);
    if (rank == 1) received = ids;
  });
  CHECK(received == std::vector<std::int32_t>{7, 151551, 0, 42});
  ranks.group[1]->abort("rank 1 is down");
  tensor x = ranks.upload(0, {1.0f}, {1});
  CHECK_THROWS_WITH(ranks.group[0]->all_reduce_sum(x), Catch::Contains("rank 1 is down"));
}

TEST_CASE("nccl ranks that join one by one with a ticket sum like a group made at once, and share its abort",
          "[cuda][nccl]") {
  if (!have_two_gpus_or_skip()) return;
  std::vector<std::unique_ptr<cuda_backend>> backends;
  for (int device = 0; device < 2; ++device) backends.push_back(std::make_unique<cuda_backend>(device));
  const std::vector<std::uint8_t> id = backends[0]->make_group_id();
  std::vector<std::shared_ptr<comm::communicator>> members(2);
  std::vector<std::vector<float>> results(2);
  std::vector<std::future<void>> ranks;
  for (int rank = 0; rank < 2; ++rank)
    ranks.push_back(std::async(std::launch::async, [&, rank] {
      cuda_backend& backend = *backends[static_cast<std::size_t>(rank)];
      auto& member = members[static_cast<std::size_t>(rank)];
      member = backend.join_group({id, rank, 2});  // returns once both ranks are in
      std::vector<float> values{1.0f + static_cast<float>(rank), 10.0f};
      tensor x = backend.alloc(dtype::f32, {2});
      backend.upload(x, values.data());
      member->all_reduce_sum(x);
      results[static_cast<std::size_t>(rank)].resize(2);
      backend.download(x, results[static_cast<std::size_t>(rank)].data());
    }));
  for (auto& rank : ranks) rank.get();
  CHECK(members[1]->rank() == 1);
  CHECK(members[1]->size() == 2);
  CHECK(results[0] == std::vector<float>{3.0f, 20.0f});
  CHECK(results[1] == results[0]);
  members[0]->abort("rank 0 is down");
  tensor x = backends[1]->alloc(dtype::f32, {1});
  CHECK_THROWS_WITH(members[1]->all_reduce_sum(x), Catch::Contains("rank 0 is down"));
  CHECK_THROWS_WITH(backends[0]->join_group({{1, 2, 3}, 0, 2}), Catch::Contains("bytes"));
}

TEST_CASE("a rank that cannot join releases the ranks of its process waiting for it, with the reason", "[cuda][nccl]") {
  if (!test::have_gpu_or_skip() || !have_nccl()) return;  // one GPU is enough: rank 1 never gets as far as NCCL
  cuda_backend backend(0);
  const std::vector<std::uint8_t> id = backend.make_group_id();
  auto waiting = std::async(std::launch::async, [&] { return backend.join_group({id, 0, 2}); });
  CHECK_THROWS_WITH(backend.join_group({id, 7, 2}), Catch::Contains("rank 7 of 2 could not join"));
  CHECK_THROWS_WITH(waiting.get(), Catch::Contains("rank 7 of 2 could not join its NCCL group"));
}

}  // namespace glm4::kernels::cuda
