// The test backend that holds the CPU suite to CUDA graphs' rules (tests/kernels/replaying_backend.hpp).
#include "tests/kernels/replaying_backend.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <vector>

namespace glm4::test {
namespace {

using kernels::dtype;

std::vector<float> values_of(kernels::backend& b, const kernels::tensor& t) {
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  b.download(t, out.data());
  return out;
}

}  // namespace

TEST_CASE("a replay runs the recorded ops on the recorded buffers without calling the ops again", "[replaying_backend]") {
  auto b = make_replaying_backend();
  auto x = b->alloc(dtype::f32, {1, 3});
  auto y = b->alloc(dtype::f32, {1, 3});
  const std::vector<float> zeros{0, 0, 0}, ones{1, 2, 3};
  b->upload(x, zeros.data());
  b->upload(y, ones.data());
  int calls = 0;
  const auto ops = [&] {
    ++calls;
    b->add_inplace(x, y);
  };
  b->run_recorded(7, ops);  // runs, then records
  CHECK(calls == 2);
  CHECK(values_of(*b, x) == std::vector<float>{1, 2, 3});
  b->run_recorded(7, ops);  // replays
  b->run_recorded(7, ops);
  CHECK(calls == 2);
  CHECK(b->num_replays() == 2);
  CHECK(values_of(*b, x) == std::vector<float>{3, 6, 9});
  // A host value changed after recording reaches a replay only through the buffers it reads.
  const std::vector<float> tens{10, 10, 10};
  b->upload(y, tens.data());
  b->run_recorded(7, ops);
  CHECK(values_of(*b, x) == std::vector<float>{13, 16, 19});
}

TEST_CASE("recording refuses what a stream capture refuses", "[replaying_backend]") {
  auto b = make_replaying_backend();
  auto x = b->alloc(dtype::f32, {2});
  const std::vector<float> host{1, 2};
  std::vector<float> back(2);
  // Ops that do `action` only on their second call, the one that is recorded.
  const auto on_recording = [&](std::uint64_t key, const std::function<void()>& action) {
    int calls = 0;
    b->run_recorded(key, [&] {
      if (++calls == 2) action();
    });
  };
  CHECK_THROWS_WITH(on_recording(1, [&] { b->upload(x, host.data()); }), Catch::Contains("upload while recording"));
  CHECK_THROWS_WITH(on_recording(2, [&] { b->download(x, back.data()); }), Catch::Contains("download while recording"));
  CHECK_THROWS_WITH(on_recording(3, [&] { (void)b->alloc(dtype::f32, {1}); }), Catch::Contains("alloc while recording"));
  CHECK_THROWS_WITH(on_recording(4, [&] { b->forget_recordings(); }), Catch::Contains("while recording"));
  CHECK(b->num_recordings() == 0);
  // Outside a recording all of them work.
  b->upload(x, host.data());
  b->download(x, back.data());
  CHECK(back == host);
}

TEST_CASE("a replay that names a freed buffer throws; after forget_recordings the ops are recorded anew",
          "[replaying_backend]") {
  auto b = make_replaying_backend();
  auto x = b->alloc(dtype::f32, {2});
  auto y = std::make_unique<kernels::tensor>(b->alloc(dtype::f32, {2}));
  const std::vector<float> ones{1, 1};
  b->upload(x, ones.data());
  b->upload(*y, ones.data());
  kernels::tensor* current = y.get();
  const auto ops = [&] { b->add_inplace(x, *current); };
  b->run_recorded(1, ops);
  auto replacement = b->alloc(dtype::f32, {2});
  b->upload(replacement, ones.data());
  current = &replacement;
  y.reset();  // the recorded y is gone
  CHECK_THROWS_WITH(b->run_recorded(1, ops), Catch::Contains("freed since it was recorded"));
  b->forget_recordings();
  b->run_recorded(1, ops);
  CHECK(values_of(*b, x) == std::vector<float>{3, 3});
}

}  // namespace glm4::test
