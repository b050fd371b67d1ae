// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator, so draw i of a request is a pure function of (seed, i) with no state
// shared between requests.
#pragma once

#include <array>
#include <cstdint>

namespace glm4::engine {

using philox_counter = std::array<std::uint32_t, 4>;
using philox_key = std::array<std::uint32_t, 2>;

constexpr philox_counter philox4x32_10(philox_counter counter, philox_key key) {
  constexpr std::uint32_t multiplier_0 = 0xD2511F53u;
  constexpr std::uint32_t multiplier_1 = 0xCD9E8D57u;
  constexpr std::uint32_t weyl_0 = 0x9E3779B9u;  // golden ratio
  constexpr std::uint32_t weyl_1 = 0xBB67AE85u;  // sqrt(3) - 1
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += weyl_0;
      key[1] += weyl_1;
    }
    const std::uint64_t product_0 = std::uint64_t{multiplier_0} * counter[0];
    const std::uint64_t product_1 = std::uint64_t{multiplier_1} * counter[2];
    counter = {static_cast<std::uint32_t>(product_1 >> 32) ^ counter[1] ^ key[0],
               static_cast<std::uint32_t>(product_1),
               static_cast<std::uint32_t>(product_0 >> 32) ^ counter[3] ^ key[1],
               static_cast<std::uint32_t>(product_0)};
  }
  return counter;
}

/// A uniform double in [0, 1) with 53 random bits: the draw for `step` of the stream `seed`.
constexpr double uniform_draw(std::uint64_t seed, std::uint64_t step) {
  const philox_counter block = philox4x32_10(
      {static_cast<std::uint32_t>(step), static_cast<std::uint32_t>(step >> 32), 0u, 0u},
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
  const std::uint64_t bits = (std::uint64_t{block[0]} << 21) ^ (block[1] >> 11);
  return static_cast<double>(bits) * 0x1.0p-53;
}

}  // namespace glm4::engine
