// How the grouped attention kernel splits contexts over blocks (kernels/attention_split.hpp).
#include "kernels/attention_split.hpp"

#include <catch2/catch.hpp>

namespace glm4::kernels {

TEST_CASE("a step with few rows splits each context into whole tiles, about two blocks per SM", "[attention_split]") {
  // One glm-4-9b decode row (2 KV heads) on 132 SMs, 4096 keys in tiles of 32: 128 tiles.
  const attention_split one_row = plan_attention_split(1, 2, 4096, 32, 132, 64);
  CHECK(one_row.splits == 64);  // capped
  CHECK(one_row.keys_per_split == 64);
  // Every piece but the last is whole, and the pieces cover max_keys with none empty.
  for (const auto& [tokens, kv_heads, keys] : {std::tuple{1, 2, 4096}, std::tuple{3, 2, 1000}, std::tuple{64, 2, 256},
                                               std::tuple{5, 8, 33}, std::tuple{1, 1, 1}}) {
    CAPTURE(tokens, kv_heads, keys);
    const attention_split split = plan_attention_split(tokens, kv_heads, keys, 32, 132, 64);
    CHECK(split.keys_per_split % 32 == 0);
    CHECK(split.splits * split.keys_per_split >= keys);
    CHECK((split.splits - 1) * split.keys_per_split < keys);
    CHECK(split.splits >= 1);
    CHECK(split.splits <= 64);
  }
  // Enough rows to fill the GPU: no split.
  CHECK(plan_attention_split(512, 2, 8192, 32, 132, 64).splits == 1);
  CHECK(plan_attention_split(64, 2, 256, 32, 132, 64).splits == 3);  // 128 pairs: ceil(264 / 128)
  // A short context is not cut below one tile a piece.
  CHECK(plan_attention_split(1, 2, 40, 32, 132, 64).splits == 2);
  CHECK(plan_attention_split(1, 2, 10, 32, 132, 64).splits == 1);
  // max_splits 1 turns splitting off.
  CHECK(plan_attention_split(1, 2, 4096, 32, 132, 1).splits == 1);
}

}  // namespace glm4::kernels
