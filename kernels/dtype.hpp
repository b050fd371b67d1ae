// Element types of tensors, and the scalar conversions every backend shares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace glm4::kernels {

enum class dtype : std::uint8_t { f32, f16, bf16, i32 };

constexpr std::size_t dtype_size(dtype type) {
  switch (type) {
    case dtype::f32: return 4;
    case dtype::f16: return 2;
    case dtype::bf16: return 2;
    case dtype::i32: return 4;
  }
  return 0;
}

/// Name as written in safetensors headers ("F32", "F16", "BF16", "I32").
std::string_view dtype_name(dtype type);

/// Parses a safetensors dtype name; nullopt for the ones we do not support.
std::optional<dtype> parse_dtype(std::string_view name);

inline float bf16_to_f32(std::uint16_t bits) {
  std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

/// Round to nearest even, as torch does; NaN stays NaN.
inline std::uint16_t f32_to_bf16(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

/// The largest finite F16. Keys and values narrowed into an F16 KV cache are clamped to
/// [-f16_max, f16_max] (NaN stays NaN): an outlier loses precision instead of becoming inf,
/// which would turn every score of its row into NaN.
inline constexpr float f16_max = 65504.0f;

float f16_to_f32(std::uint16_t bits);
std::uint16_t f32_to_f16(float value);

}  // namespace glm4::kernels
