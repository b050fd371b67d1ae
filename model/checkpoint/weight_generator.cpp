#include "model/checkpoint/weight_generator.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace glm4::model {

namespace {

constexpr std::uint64_t golden_gamma = 0x9e3779b97f4a7c15ull;

// SplitMix64's finaliser: a bijective mix, so (key + i * gamma) gives independent-looking streams.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t tensor_key(std::uint64_t seed, const std::string& name) {
  std::uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a of the canonical name
  for (unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ull;
  return mix64(mix64(seed) ^ hash);
}

inline std::uint32_t mix32(std::uint32_t h) {  // MurmurHash3's finaliser, also bijective
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  return h ^ (h >> 16);
}

// Sum of four 16-bit uniforms from two 32-bit hashes: mean 0, variance 1 after scaling by sqrt(3).
inline float standard_normalish(std::uint32_t a, std::uint32_t b) {
  const float sum = static_cast<float>(a & 0xffffu) + static_cast<float>(a >> 16) + static_cast<float>(b & 0xffffu) +
                    static_cast<float>(b >> 16);
  constexpr float scale = 1.7320508f / 65536.0f;
  return (sum + 2.0f - 2.0f * 65536.0f) * scale;
}

// Round to nearest even without kernels::f32_to_bf16's NaN branch, which stops vectorisation;
// the values here are always finite.
inline std::uint16_t finite_to_bf16(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return static_cast<std::uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// Elements [low + begin, low + end) of one run; plain arguments so the loop vectorises.
template <class Store>
void generate_run(Store store, std::uint32_t key_a, std::uint32_t key_b, std::uint32_t low, float mean, float stddev,
                  std::size_t out_offset, std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) {
    const std::uint32_t e = low + static_cast<std::uint32_t>(i);
    const float normal = standard_normalish(mix32(key_a + e * 0x9e3779b9u), mix32(key_b + e * 0x7f4a7c15u));
    store(out_offset + i, mean + stddev * normal);
  }
}

// The hash lanes are 32-bit so that AVX2 vectorises them; the element index's high word, constant
// over runs of 2^32 elements, goes into the lane keys.
template <class Store>
void fill(std::uint64_t key, weight_distribution distribution, std::uint64_t first, std::size_t count, Store store) {
  std::size_t done = 0;
  while (done < count) {
    const std::uint64_t element = first + done;
    const std::uint64_t high = element >> 32;
    const std::size_t run = static_cast<std::size_t>(std::min<std::uint64_t>(count - done, ((high + 1) << 32) - element));
    const std::uint64_t lane_key = mix64(key ^ (high * golden_gamma));
    const auto key_a = static_cast<std::uint32_t>(lane_key);
    const auto key_b = static_cast<std::uint32_t>(lane_key >> 32);
    const auto low = static_cast<std::uint32_t>(element);
#pragma omp parallel
    {
      const auto num_threads = static_cast<std::size_t>(omp_get_num_threads());
      const auto thread = static_cast<std::size_t>(omp_get_thread_num());
      generate_run(store, key_a, key_b, low, distribution.mean, distribution.stddev, done, run * thread / num_threads,
                   run * (thread + 1) / num_threads);
    }
    done += run;
  }
}

}  // namespace

weight_distribution distribution_of(const canonical_tensor& tensor) {
  switch (kind_of(tensor.id.field)) {
    case weight_kind::embedding: return {0.0f, 1.0f};
    case weight_kind::norm: return {1.0f, 0.02f};
    case weight_kind::bias: return {0.0f, 0.02f};
    case weight_kind::linear: break;
  }
  const auto fan_in = tensor.shape.size() > 1 ? tensor.shape[1] : 1;
  return {0.0f, static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)))};
}

void generate_weights(std::uint64_t seed, const canonical_tensor& tensor, kernels::dtype type, std::size_t first_element,
                      std::span<std::byte> out) {
  const std::uint64_t key = tensor_key(seed, canonical_name(tensor.id));
  const weight_distribution distribution = distribution_of(tensor);
  const std::size_t count = out.size() / kernels::dtype_size(type);
  std::byte* data = out.data();
  switch (type) {
    case kernels::dtype::f32:
      fill(key, distribution, first_element, count, [data](std::size_t i, float v) { std::memcpy(data + 4 * i, &v, 4); });
      break;
    case kernels::dtype::bf16:
      fill(key, distribution, first_element, count, [data](std::size_t i, float v) {
        const std::uint16_t bits = finite_to_bf16(v);
        std::memcpy(data + 2 * i, &bits, 2);
      });
      break;
    case kernels::dtype::f16:
      fill(key, distribution, first_element, count, [data](std::size_t i, float v) {
        const std::uint16_t bits = kernels::f32_to_f16(v);
        std::memcpy(data + 2 * i, &bits, 2);
      });
      break;
    case kernels::dtype::i32: break;
  }
}

}  // namespace glm4::model
