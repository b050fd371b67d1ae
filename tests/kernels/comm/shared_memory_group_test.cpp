// The shared-memory collectives with real threads, one per rank: sums and gathers against a
// serial reference, bitwise agreement between ranks, back-to-back reuse, and abort.
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <future>
#include <thread>

#include "kernels/comm/communicator.hpp"

namespace glm4::kernels::comm {
namespace {

tensor host_f32(std::vector<std::int64_t> shape) {
  tensor t;
  t.shape = std::move(shape);
  auto memory = std::make_shared<std::vector<float>>(static_cast<std::size_t>(t.numel()));
  t.data = memory->data();
  t.owner = memory;
  return t;
}

// A value that differs by rank, element and round, so that sums round; read back from one table
// so that the expected sum adds exactly the bits the ranks held.
float value_of(int rank, std::int64_t index, int round) {
  static const std::vector<float> table = [] {
    std::vector<float> values(4 * 97 * 5);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = 0.1f * static_cast<float>(i % 7) + 1e-3f * static_cast<float>(i) - 0.37f;
    return values;
  }();
  return table[static_cast<std::size_t>(rank * 97 * 5 + (index % 97) * 5 + round % 5)];
}

// Runs body(rank) on one thread per rank and rethrows the first failure.
void on_every_rank(int size, const std::function<void(int)>& body) {
  std::vector<std::future<void>> ranks;
  for (int rank = 0; rank < size; ++rank) ranks.push_back(std::async(std::launch::async, body, rank));
  for (auto& rank : ranks) rank.get();
}

}  // namespace

TEST_CASE("all_reduce_sum adds the ranks' tensors, identically on every rank, round after round", "[kernels][comm]") {
  const int size = GENERATE(1, 2, 3, 4);
  CAPTURE(size);
  const auto group = make_shared_memory_group(size);
  constexpr int rounds = 50;
  // Element counts that split unevenly over the ranks, including fewer elements than ranks.
  const std::vector<std::int64_t> counts = {1, 2, 7, 64, 1000, 4099};
  std::vector<std::vector<std::vector<float>>> results(static_cast<std::size_t>(size));
  on_every_rank(size, [&](int rank) {
    for (int round = 0; round < rounds; ++round) {
      const std::int64_t count = counts[static_cast<std::size_t>(round) % counts.size()];
      tensor x = host_f32({count});
      for (std::int64_t i = 0; i < count; ++i) x.as<float>()[i] = value_of(rank, i, round);
      group[static_cast<std::size_t>(rank)]->all_reduce_sum(x);
      results[static_cast<std::size_t>(rank)].emplace_back(x.as<float>(), x.as<float>() + count);
    }
  });
  for (int round = 0; round < rounds; ++round) {
    CAPTURE(round);
    const std::vector<float>& first = results[0][static_cast<std::size_t>(round)];
    for (std::size_t i = 0; i < first.size(); ++i) {
      float want = value_of(0, static_cast<std::int64_t>(i), round);
      for (int r = 1; r < size; ++r) want += value_of(r, static_cast<std::int64_t>(i), round);
      REQUIRE(first[i] == want);  // rank order, like the serial sum
    }
    for (int r = 1; r < size; ++r)
      REQUIRE(std::memcmp(results[static_cast<std::size_t>(r)][static_cast<std::size_t>(round)].data(), first.data(),
                          first.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("gather_columns puts uneven column slices side by side in rank order on rank 0", "[kernels][comm]") {
  const int size = 3;
  const std::vector<std::int64_t> widths = {3, 1, 4};
  const std::int64_t rows = 5, full_width = 8;
  const auto group = make_shared_memory_group(size);
  tensor full = host_f32({rows, full_width});
  on_every_rank(size, [&](int rank) {
    tensor local = host_f32({rows, widths[static_cast<std::size_t>(rank)]});
    for (int round = 0; round < 3; ++round) {
      for (std::int64_t i = 0; i < local.numel(); ++i) local.as<float>()[i] = static_cast<float>(100 * rank + 10 * round + i);
      group[static_cast<std::size_t>(rank)]->gather_columns(local, rank == 0 ? &full : nullptr);
    }
  });
  std::int64_t column = 0;
  for (int rank = 0; rank < size; ++rank) {
    const std::int64_t w = widths[static_cast<std::size_t>(rank)];
    for (std::int64_t row = 0; row < rows; ++row)
      for (std::int64_t c = 0; c < w; ++c) {
        CAPTURE(rank, row, c);
        REQUIRE(full.as<float>()[row * full_width + column + c] == static_cast<float>(100 * rank + 20 + row * w + c));
      }
    column += w;
  }
}

TEST_CASE("gather_columns refuses a result that the parts do not make up, on every rank", "[kernels][comm]") {
  const auto group = make_shared_memory_group(2);
  tensor too_narrow = host_f32({2, 3});
  std::vector<std::string> errors(2);
  on_every_rank(2, [&](int rank) {
    const tensor local = host_f32({2, 2});
    try {
      group[static_cast<std::size_t>(rank)]->gather_columns(local, rank == 0 ? &too_narrow : nullptr);
    } catch (const comm_aborted& error) {
      errors[static_cast<std::size_t>(rank)] = error.what();
    }
  });
  CHECK_THAT(errors[0], Catch::Contains("do not make up the result"));
  CHECK_THAT(errors[1], Catch::Contains("do not make up the result"));
}

TEST_CASE("an aborted group makes waiting and later collectives throw with the reason", "[kernels][comm]") {
  const auto group = make_shared_memory_group(2);
  tensor x = host_f32({4});
  // Rank 0 may reach the barrier before or after the abort: either way it must not wait forever.
  auto waiting = std::async(std::launch::async, [&] { group[0]->all_reduce_sum(x); });
  group[1]->abort("rank 1 is down");
  REQUIRE_THROWS_WITH(waiting.get(), "rank 1 is down");
  REQUIRE_THROWS_AS(group[1]->all_reduce_sum(x), comm_aborted);
  group[0]->abort("a second reason");
  tensor full = host_f32({1, 8});
  const tensor local = reshape(x, {1, 4});
  REQUIRE_THROWS_WITH(group[0]->gather_columns(local, &full), Catch::Contains("rank 1 is down"));
}

TEST_CASE("mismatched shapes abort the group instead of reading past a buffer", "[kernels][comm]") {
  const auto group = make_shared_memory_group(2);
  std::vector<std::string> errors(2);
  on_every_rank(2, [&](int rank) {
    tensor x = host_f32({rank == 0 ? 4 : 6});
    try {
      group[static_cast<std::size_t>(rank)]->all_reduce_sum(x);
    } catch (const comm_aborted& error) {
      errors[static_cast<std::size_t>(rank)] = error.what();
    }
  });
  CHECK_THAT(errors[0], Catch::Contains("different element counts"));
  CHECK_THAT(errors[1], Catch::Contains("different element counts"));
}

TEST_CASE("broadcast_host gives every rank rank 0's values, round after round", "[kernels][comm]") {
  for (int size : {1, 2, 3, 4}) {
    CAPTURE(size);
    const auto group = make_shared_memory_group(size);
    std::vector<std::vector<std::int32_t>> received(static_cast<std::size_t>(size));
    on_every_rank(size, [&](int rank) {
      for (int round = 0; round < 50; ++round) {
        // Rank 0's values change every round; the others start from their own garbage.
        std::vector<std::int32_t> values(7, rank == 0 ? 0 : -rank);
        if (rank == 0)
          for (std::size_t i = 0; i < values.size(); ++i) values[i] = round * 1000 + static_cast<std::int32_t>(i);
        group[static_cast<std::size_t>(rank)]->broadcast_host(values);
        for (std::size_t i = 0; i < values.size(); ++i)
          if (values[i] != round * 1000 + static_cast<std::int32_t>(i)) throw std::runtime_error("rank " + std::to_string(rank) + " got a wrong value");
        received[static_cast<std::size_t>(rank)] = values;
      }
    });
    for (const auto& values : received) CHECK(values == received.front());
  }
}

TEST_CASE("broadcast_host with mismatched counts aborts the group", "[kernels][comm]") {
  const auto group = make_shared_memory_group(2);
  std::vector<std::string> errors(2);
  on_every_rank(2, [&](int rank) {
    std::vector<std::int32_t> values(rank == 0 ? 3 : 5);
    try {
      group[static_cast<std::size_t>(rank)]->broadcast_host(values);
    } catch (const comm_aborted& error) {
      errors[static_cast<std::size_t>(rank)] = error.what();
    }
  });
  CHECK_THAT(errors[0], Catch::Contains("different element counts"));
  CHECK_THAT(errors[1], Catch::Contains("different element counts"));
}

TEST_CASE("ranks joining a shared-memory group one by one with tickets form one group", "[kernels][comm]") {
  const std::vector<std::uint8_t> id = make_shared_memory_group_id();
  CHECK(make_shared_memory_group_id() != id);
  constexpr int size = 3;
  std::vector<std::shared_ptr<communicator>> members(size);
  for (int rank : {2, 0, 1}) members[static_cast<std::size_t>(rank)] = join_shared_memory_group({id, rank, size});
  std::vector<float> sums(size);
  on_every_rank(size, [&](int rank) {
    communicator& member = *members[static_cast<std::size_t>(rank)];
    REQUIRE(member.rank() == rank);
    REQUIRE(member.size() == size);
    tensor x = host_f32({1});
    *x.as<float>() = static_cast<float>(rank + 1);
    member.all_reduce_sum(x);
    sums[static_cast<std::size_t>(rank)] = *x.as<float>();
  });
  CHECK(sums == std::vector<float>(size, 6.0f));
}

TEST_CASE("a shared-memory join refuses a rank outside the group, a rank taken and another size", "[kernels][comm]") {
  const std::vector<std::uint8_t> id = make_shared_memory_group_id();
  CHECK_THROWS_WITH(join_shared_memory_group({id, 2, 2}), Catch::Contains("rank 2 is not in a group of 2"));
  const auto first = join_shared_memory_group({id, 0, 2});
  CHECK_THROWS_WITH(join_shared_memory_group({id, 0, 2}), Catch::Contains("rank 0 joined twice"));
  CHECK_THROWS_WITH(join_shared_memory_group({id, 1, 3}), Catch::Contains("the group has 2 ranks, a ticket says 3"));
  CHECK(join_shared_memory_group({id, 1, 2})->rank() == 1);
  // Complete groups leave the registry: the same id now starts a new group.
  CHECK(join_shared_memory_group({id, 0, 1})->size() == 1);
}

}  // namespace glm4::kernels::comm
