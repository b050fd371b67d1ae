#include "kernels/tensor.hpp"

namespace glm4::kernels {

std::string describe(const tensor& t) {
  std::string text(dtype_name(t.type));
  text += '[';
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(t.shape[i]);
  }
  text += ']';
  return text;
}

tensor view_rows(const tensor& t, std::int64_t first, std::int64_t count) {
  if (t.shape.empty() || first < 0 || count < 0 || first + count > t.shape[0])
    throw std::out_of_range("view_rows [" + std::to_string(first) + ", +" + std::to_string(count) + ") of " + describe(t));
  tensor view = t;
  view.shape[0] = count;
  const std::size_t row_bytes = t.shape[0] ? t.nbytes() / static_cast<std::size_t>(t.shape[0]) : 0;
  view.data = static_cast<char*>(t.data) + static_cast<std::size_t>(first) * row_bytes;
  return view;
}

tensor reshape(const tensor& t, std::vector<std::int64_t> shape) {
  tensor view = t;
  view.shape = std::move(shape);
  if (view.numel() != t.numel())
    throw std::invalid_argument("reshape of " + describe(t) + " to " + describe(view) + " changes the element count");
  return view;
}

void expect_shape(const tensor& t, dtype type, const std::vector<std::int64_t>& shape, const char* what) {
  if (t.type != type || t.shape != shape) {
    tensor wanted;
    wanted.type = type;
    wanted.shape = shape;
    throw std::invalid_argument(std::string(what) + ": expected " + describe(wanted) + ", got " + describe(t));
  }
}

}  // namespace glm4::kernels
