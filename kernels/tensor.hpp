// A dense, row-major tensor: shape, element type and a pointer into host or device memory.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/dtype.hpp"

namespace glm4::kernels {

struct tensor {
  dtype type = dtype::f32;
  std::vector<std::int64_t> shape;
  /// Host pointer on the CPU backend, device pointer on a GPU backend.
  void* data = nullptr;
  /// Keeps the memory alive (a backend allocation or a mapped file); empty for borrowed views.
  std::shared_ptr<void> owner;

  int rank() const { return static_cast<int>(shape.size()); }
  std::int64_t dim(int axis) const { return shape.at(static_cast<std::size_t>(axis < 0 ? axis + rank() : axis)); }
  std::int64_t numel() const {
    std::int64_t count = 1;
    for (auto extent : shape) count *= extent;
    return count;
  }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(type); }
  bool empty() const { return data == nullptr; }

  template <class T> T* as() { return static_cast<T*>(data); }
  template <class T> const T* as() const { return static_cast<const T*>(data); }
};

/// "BF16[128, 64]" for error messages.
std::string describe(const tensor& t);

/// Rows [first, first + count) of the outermost axis; shares the owner.
tensor view_rows(const tensor& t, std::int64_t first, std::int64_t count);

/// The same memory seen with another shape of equal element count.
tensor reshape(const tensor& t, std::vector<std::int64_t> shape);

/// Throws std::invalid_argument naming `what` when t is not `type` with exactly `shape`.
void expect_shape(const tensor& t, dtype type, const std::vector<std::int64_t>& shape, const char* what);

}  // namespace glm4::kernels
