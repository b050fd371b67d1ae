// size_kv_pool: the smallest device's report decides the pool; max_model_len follows it or the
// start fails naming the setting.
#include <catch2/catch.hpp>

#include <limits>
#include <stdexcept>
#include <vector>

#include "engine/kv_pool.hpp"

namespace glm4::engine {
namespace {

scheduler_config config_of(std::int32_t num_blocks, std::int64_t max_model_len, bool fit) {
  scheduler_config c;
  c.num_blocks = num_blocks;
  c.block_size = 16;
  c.max_model_len = max_model_len;
  c.fit_max_model_len_to_pool = fit;
  return c;
}

}  // namespace

TEST_CASE("memory_report turns a budget into blocks", "[kv_pool]") {
  CHECK(memory_report{"cpu", 1000, 100}.max_blocks() == 10);
  CHECK(memory_report{"cpu", 999, 100}.max_blocks() == 9);
  CHECK(memory_report{"cpu", 99, 100}.max_blocks() == 0);
  CHECK(memory_report{"none", 0, 0}.max_blocks() == std::numeric_limits<std::int64_t>::max());
  // More blocks than a block id can name are capped at the id range.
  CHECK(memory_report{"huge", std::numeric_limits<std::uint64_t>::max(), 1}.max_blocks() ==
        std::numeric_limits<std::int32_t>::max());
}

TEST_CASE("the smallest device decides the pool, capped by the config's num_blocks", "[kv_pool]") {
  const std::vector<memory_report> devices{{"rank 0", 400 * 1024, 1024}, {"rank 1", 250 * 2048, 2048}, {"no kv", 0, 0}};
  const kv_pool_size pool = size_kv_pool(config_of(1000, 2048, false), devices);
  CHECK(pool.num_blocks == 250);
  CHECK(pool.max_model_len == 2048);
  CHECK(pool.largest_block_bytes == 2048);
  CHECK(pool.note.empty());
  CHECK(size_kv_pool(config_of(100, 1024, false), devices).num_blocks == 100);
  CHECK(size_kv_pool(config_of(100, 1024, false), {}).num_blocks == 100);
}

TEST_CASE("a pool short of max_model_len lowers it when allowed, and names the device", "[kv_pool]") {
  const std::vector<memory_report> devices{{"cpu:0", 1 << 20, 1024}, {"cpu:1", 10 * 4096, 4096}};
  const kv_pool_size pool = size_kv_pool(config_of(1000, 4096, true), devices);
  CHECK(pool.num_blocks == 10);
  CHECK(pool.max_model_len == 160);
  CHECK_THAT(pool.note, Catch::Contains("4096") && Catch::Contains("160") && Catch::Contains("cpu:1"));
}

TEST_CASE("a pool short of a configured max_model_len fails, naming the settings", "[kv_pool]") {
  const std::vector<memory_report> devices{{"cpu:1", 10 * 4096, 4096}};
  CHECK_THROWS_WITH(size_kv_pool(config_of(1000, 4096, false), devices),
                    Catch::Contains("max_model_len 4096 does not fit") && Catch::Contains("cpu:1") &&
                        Catch::Contains("kv_cache_bytes") && Catch::Contains("[scheduler] max_model_len"));
}

TEST_CASE("a budget that holds no block fails even when max_model_len may shrink", "[kv_pool]") {
  const std::vector<memory_report> devices{{"cuda:0", 100, 4096}};
  CHECK_THROWS_WITH(size_kv_pool(config_of(1000, 4096, true), devices),
                    Catch::Contains("holds no block of 16 tokens") && Catch::Contains("cuda:0"));
}

}  // namespace glm4::engine
