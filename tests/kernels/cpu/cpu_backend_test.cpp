// The CPU backend's memory functions: aligned allocation, upload/download round trips, copies on the
// device, zero-copy to_device, and its name.
#include <catch2/catch.hpp>

#include <cstdint>

#include "tests/kernels/op_test_support.hpp"

namespace glm4::test {

TEST_CASE("cpu backend allocates aligned memory and round-trips bytes", "[kernels][cpu_backend]") {
  auto backend = kernels::make_cpu_backend(2);
  CHECK(backend->kind() == kernels::device_kind::cpu);
  CHECK(backend->name() == "cpu (2 threads)");
  kernels::tensor t = backend->alloc(kernels::dtype::bf16, {3, 5});
  CHECK(reinterpret_cast<std::uintptr_t>(t.data) % 64 == 0);
  CHECK(t.owner);
  const std::vector<std::uint16_t> source{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  backend->upload(t, source.data());
  std::vector<std::uint16_t> back(15);
  backend->download(t, back.data());
  CHECK(back == source);
  CHECK_THROWS_AS(backend->alloc(kernels::dtype::f32, {2, -1}), std::invalid_argument);
}

TEST_CASE("cpu copy moves one view's bytes into another and refuses mismatched or overlapping ones",
          "[kernels][cpu_backend]") {
  auto backend = kernels::make_cpu_backend(1);
  kernels::tensor pool = backend->alloc(kernels::dtype::bf16, {4, 3});
  const std::vector<std::uint16_t> rows{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  backend->upload(pool, rows.data());
  kernels::tensor third = kernels::view_rows(pool, 2, 1);
  backend->copy(third, kernels::view_rows(pool, 0, 1));
  std::vector<std::uint16_t> back(12);
  backend->download(pool, back.data());
  CHECK(back == std::vector<std::uint16_t>{1, 2, 3, 4, 5, 6, 1, 2, 3, 10, 11, 12});

  kernels::tensor wider = kernels::view_rows(pool, 0, 2);
  CHECK_THROWS_WITH(backend->copy(third, wider), Catch::Contains("one type and element count"));
  kernels::tensor other_type = backend->alloc(kernels::dtype::f16, {1, 3});
  CHECK_THROWS_AS(backend->copy(other_type, third), std::invalid_argument);
  kernels::tensor overlapping = kernels::view_rows(pool, 1, 2);
  CHECK_THROWS_WITH(backend->copy(overlapping, kernels::view_rows(pool, 2, 2)), Catch::Contains("overlap"));
}

TEST_CASE("cpu to_device is the host view itself", "[kernels][cpu_backend]") {
  auto backend = kernels::make_cpu_backend(1);
  std::mt19937 rng(1);
  const host_tensor host = random_tensor(rng, kernels::dtype::f16, {4, 4});
  const kernels::tensor device = backend->to_device(host.view);
  CHECK(device.data == host.view.data);
  CHECK(device.shape == host.view.shape);
  CHECK(device.type == kernels::dtype::f16);
}

TEST_CASE("cpu backend with 0 threads uses every hardware thread", "[kernels][cpu_backend]") {
  auto backend = kernels::make_cpu_backend(0);
  CHECK(backend->name().rfind("cpu (", 0) == 0);
  CHECK_THROWS_AS(kernels::make_cpu_backend(-1), std::invalid_argument);
}

}  // namespace glm4::test
