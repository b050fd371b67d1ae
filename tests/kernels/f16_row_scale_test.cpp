// The power-of-two scale that narrows an F32 row to F16 without overflow (kernels/f16_row_scale.hpp).
#include "kernels/f16_row_scale.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

namespace glm4::kernels {

TEST_CASE("rows within F16's range are left alone; larger ones get the smallest power of two that fits",
          "[f16_row_scale]") {
  for (float absmax : {0.0f, 1e-20f, 1.0f, 1000.0f, f16_row_limit}) {
    CAPTURE(absmax);
    CHECK(f16_row_scale_exponent(absmax) == 0);
  }
  for (float absmax : {std::nextafter(f16_row_limit, 1e9f), 65504.0f, 65536.0f, 1e5f, 123456789.0f, 3e38f}) {
    CAPTURE(absmax);
    const int exponent = f16_row_scale_exponent(absmax);
    REQUIRE(exponent > 0);
    CHECK(std::ldexp(static_cast<double>(absmax), -exponent) <= f16_row_limit);
    CHECK(std::ldexp(static_cast<double>(absmax), -(exponent - 1)) > f16_row_limit);  // no smaller power fits
  }
  CHECK(f16_row_scale_exponent(65536.0f) == 1);
  // inf and NaN rows stay as they are, so they come out inf/NaN as on the CPU.
  CHECK(f16_row_scale_exponent(std::numeric_limits<float>::infinity()) == 0);
  CHECK(f16_row_scale_exponent(std::numeric_limits<float>::quiet_NaN()) == 0);
}

}  // namespace glm4::kernels
