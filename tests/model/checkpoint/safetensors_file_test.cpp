#include "model/checkpoint/safetensors_file.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <numeric>

#include "model/checkpoint/checkpoint_error.hpp"
#include "model/checkpoint/safetensors_writer.hpp"
#include "tests/model/checkpoint/test_support.hpp"

using namespace glm4::model;
using Catch::Matchers::Contains;
using glm4::kernels::dtype;
using glm4::kernels::tensor;

namespace {

tensor host_tensor(dtype type, std::vector<std::int64_t> shape, std::vector<std::byte>& storage, int start) {
  tensor t;
  t.type = type;
  t.shape = std::move(shape);
  storage.resize(t.nbytes());
  for (std::size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<std::byte>((start + i * 7) & 0xff);
  t.data = storage.data();
  return t;
}

std::string error_of(const std::filesystem::path& path) {
  try {
    safetensors_file::open(path);
  } catch (const checkpoint_error& error) {
    return error.what();
  }
  FAIL("no checkpoint_error for " << path);
  return {};
}

}  // namespace

TEST_CASE("safetensors: written tensors read back as views into the mapping", "[safetensors]") {
  testing::temp_dir dir;
  std::vector<std::byte> a_bytes, b_bytes, c_bytes;
  const auto a = host_tensor(dtype::f32, {3, 5}, a_bytes, 1);
  const auto b = host_tensor(dtype::f16, {7}, b_bytes, 2);
  const auto c = host_tensor(dtype::bf16, {2, 3, 4}, c_bytes, 3);
  const auto path = dir / "model.safetensors";
  write_safetensors(path, {{"a.weight", a}, {"b.bias", b}, {"c", c}}, {{"format", "pt"}});

  const auto file = safetensors_file::open(path);
  REQUIRE(file.entries().size() == 3);
  CHECK(file.metadata().at("format") == "pt");
  const auto& read_a = file.at("a.weight");
  CHECK(read_a.type == dtype::f32);
  CHECK(read_a.shape == std::vector<std::int64_t>{3, 5});
  CHECK(std::memcmp(read_a.data, a.data, a.nbytes()) == 0);
  CHECK(file.at("b.bias").type == dtype::f16);
  CHECK(std::memcmp(file.at("b.bias").data, b.data, b.nbytes()) == 0);
  CHECK(file.at("c").shape == std::vector<std::int64_t>{2, 3, 4});
  CHECK(std::memcmp(file.at("c").data, c.data, c.nbytes()) == 0);
  CHECK(file.find("missing") == nullptr);
  CHECK_THROWS_WITH(file.at("missing"), Contains("model.safetensors") && Contains("missing"));
  // The data section starts 64-byte aligned, and the first tensor with it.
  CHECK(reinterpret_cast<std::uintptr_t>(file.entries().front().view.data) % 64 == 0);
  CHECK(file.file_size() == safetensors_file_size({{"a.weight", dtype::f32, {3, 5}}, {"b.bias", dtype::f16, {7}}, {"c", dtype::bf16, {2, 3, 4}}},
                                                  {{"format", "pt"}}));
}

TEST_CASE("safetensors: a view keeps its file mapped after the file object is gone", "[safetensors]") {
  testing::temp_dir dir;
  std::vector<std::byte> bytes;
  const auto t = host_tensor(dtype::bf16, {64, 64}, bytes, 5);
  write_safetensors(dir / "x.safetensors", {{"w", t}});
  tensor view;
  {
    const auto file = safetensors_file::open(dir / "x.safetensors");
    view = file.at("w");
  }
  std::filesystem::remove(dir / "x.safetensors");
  REQUIRE(view.owner);
  CHECK(std::memcmp(view.data, t.data, t.nbytes()) == 0);
}

TEST_CASE("safetensors: an empty file list and zero-size tensors are fine", "[safetensors]") {
  testing::temp_dir dir;
  testing::write_raw_safetensors(dir / "e.safetensors", R"({"__metadata__": {"k": "v"}, "z": {"dtype": "F32", "shape": [0, 4], "data_offsets": [0, 0]}})", "");
  const auto file = safetensors_file::open(dir / "e.safetensors");
  CHECK(file.at("z").numel() == 0);
}

TEST_CASE("safetensors: malformed files are refused, naming the file and the tensor", "[safetensors][errors]") {
  testing::temp_dir dir;
  const auto path = dir / "bad.safetensors";
  const std::string f32x2(8, '\1');

  SECTION("too small for a header") {
    testing::write_file(path, "abc");
    CHECK_THAT(error_of(path), Contains(path.string()) && Contains("too small"));
  }
  SECTION("header length beyond the file") {
    testing::write_raw_safetensors(path, "{}", "", 4096);
    CHECK_THAT(error_of(path), Contains(path.string()) && Contains("header length 4096"));
  }
  SECTION("bad JSON") {
    testing::write_raw_safetensors(path, R"({"w": {"dtype": "F32",)", f32x2);
    CHECK_THAT(error_of(path), Contains(path.string()) && Contains("invalid JSON"));
  }
  SECTION("missing dtype") {
    testing::write_raw_safetensors(path, R"({"layer.w": {"shape": [2], "data_offsets": [0, 8]}})", f32x2);
    CHECK_THAT(error_of(path), Contains(path.string()) && Contains("layer.w") && Contains("dtype"));
  }
  SECTION("missing shape") {
    testing::write_raw_safetensors(path, R"({"layer.w": {"dtype": "F32", "data_offsets": [0, 8]}})", f32x2);
    CHECK_THAT(error_of(path), Contains("layer.w") && Contains("shape"));
  }
  SECTION("missing data_offsets") {
    testing::write_raw_safetensors(path, R"({"layer.w": {"dtype": "F32", "shape": [2]}})", f32x2);
    CHECK_THAT(error_of(path), Contains("layer.w") && Contains("data_offsets"));
  }
  SECTION("unsupported dtype") {
    testing::write_raw_safetensors(path, R"({"q.w": {"dtype": "I8", "shape": [8], "data_offsets": [0, 8]}})", f32x2);
    CHECK_THAT(error_of(path), Contains(path.string()) && Contains("q.w") && Contains("I8") && Contains("BF16"));
  }
  SECTION("offsets out of order") {
    testing::write_raw_safetensors(path, R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", f32x2);
    CHECK_THAT(error_of(path), Contains("\"w\"") && Contains("out of order"));
  }
  SECTION("offsets beyond the file: a truncated file") {
    testing::write_raw_safetensors(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                             "tail": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
                                   std::string(12, '\0'));
    CHECK_THAT(error_of(path), Contains(path.string()) && Contains("tail") && Contains("truncated"));
  }
  SECTION("shape disagrees with the byte length") {
    testing::write_raw_safetensors(path, R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}})", f32x2);
    CHECK_THAT(error_of(path), Contains("\"w\"") && Contains("BF16[3]") && Contains("needs 6 bytes"));
  }
  SECTION("overlapping tensors") {
    testing::write_raw_safetensors(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                             "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                                   f32x2);
    CHECK_THAT(error_of(path), Contains("overlap"));
  }
  SECTION("negative shape") {
    testing::write_raw_safetensors(path, R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", f32x2);
    CHECK_THAT(error_of(path), Contains("\"w\"") && Contains("shape"));
  }
  SECTION("metadata that is not a string map") {
    testing::write_raw_safetensors(path, R"({"__metadata__": {"total": 3}})", "");
    CHECK_THAT(error_of(path), Contains("__metadata__") && Contains("total"));
  }
  SECTION("not a file at all") {
    CHECK_THAT(error_of(dir / "absent.safetensors"), Contains("absent.safetensors") && Contains("cannot open"));
  }
}

TEST_CASE("safetensors writer: large tensors are written in chunks, byte-exact", "[safetensors][writer]") {
  testing::temp_dir dir;
  // 80 MiB of F32 spans two 64 MiB chunks; the filler writes each element's own index.
  const std::int64_t rows = 5 * 1024, cols = 4 * 1024;
  std::size_t num_calls = 0;
  write_safetensors(dir / "big.safetensors", {{"big", dtype::f32, {rows, cols}}},
                    [&](std::size_t, std::size_t offset, std::span<std::byte> out) {
                      ++num_calls;
                      auto* values = reinterpret_cast<std::uint32_t*>(out.data());
                      std::iota(values, values + out.size() / 4, static_cast<std::uint32_t>(offset / 4));
                    });
  CHECK(num_calls == 2);
  const auto file = safetensors_file::open(dir / "big.safetensors");
  const auto* values = file.at("big").as<std::uint32_t>();
  for (std::int64_t i = 0; i < rows * cols; i += 999983) CHECK(values[i] == static_cast<std::uint32_t>(i));
  CHECK(values[rows * cols - 1] == static_cast<std::uint32_t>(rows * cols - 1));
  CHECK_FALSE(std::filesystem::exists(dir / "big.safetensors.partial"));
}

TEST_CASE("safetensors writer: refuses unsupported dtypes and duplicate names", "[safetensors][writer][errors]") {
  testing::temp_dir dir;
  auto nothing = [](std::size_t, std::size_t, std::span<std::byte>) {};
  CHECK_THROWS_WITH(write_safetensors(dir / "x.safetensors", {{"ids", dtype::i32, {4}}}, nothing), Contains("ids") && Contains("I32"));
  CHECK_THROWS_WITH(write_safetensors(dir / "x.safetensors", {{"a", dtype::f32, {1}}, {"a", dtype::f32, {1}}}, nothing), Contains("duplicate"));
  CHECK_FALSE(std::filesystem::exists(dir / "x.safetensors"));
}
