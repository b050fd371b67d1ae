#include <catch2/catch.hpp>

#include <array>

#include "config/did_you_mean.hpp"

namespace glm4::config {

TEST_CASE("edit distance counts insertions, deletions, substitutions and swaps", "[config]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("port", "port") == 0);
  CHECK(edit_distance("prot", "port") == 1);  // adjacent swap
  CHECK(edit_distance("max_num_seq", "max_num_seqs") == 1);
  CHECK(edit_distance("device", "devices") == 1);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
}

TEST_CASE("closest match suggests near keys and stays quiet for far ones", "[config]") {
  const std::array<std::string_view, 4> keys{"max_num_seqs", "max_num_batched_tokens", "block_size", "max_model_len"};
  CHECK(closest_match("max_num_seq", keys) == "max_num_seqs");
  CHECK(closest_match("blok_size", keys) == "block_size");
  CHECK(closest_match("max_model_length", keys) == std::nullopt);  // three edits away: not a typo
  CHECK(closest_match("temperature", keys) == std::nullopt);
  const std::array<std::string_view, 2> short_keys{"node", "port"};
  CHECK(closest_match("nod", short_keys) == "node");
  CHECK(closest_match("xy", short_keys) == std::nullopt);
}

}  // namespace glm4::config
