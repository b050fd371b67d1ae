// A read-only memory-mapped .safetensors file whose tensors are host views into the mapping.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/tensor.hpp"

namespace glm4::model {

/// A whole file mapped read-only; unmapped when the last owner (file or tensor view) lets go.
class mapped_file {
 public:
  static std::shared_ptr<mapped_file> open(const std::filesystem::path& path);
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file();

  const std::filesystem::path& path() const { return path_; }
  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  mapped_file(std::filesystem::path path, const std::byte* data, std::size_t size);
  std::filesystem::path path_;
  const std::byte* data_;
  std::size_t size_;
};

struct safetensors_entry {
  std::string name;
  /// Host view into the mapping; owner keeps the mapping alive. The memory is read-only.
  kernels::tensor view;
  std::size_t begin = 0;  // data_offsets, relative to the data section
  std::size_t end = 0;
};

class safetensors_file {
 public:
  /// Maps and validates `path`. Throws checkpoint_error naming the file and, where one is at
  /// fault, the tensor: header length past the end, bad JSON, missing dtype/shape/data_offsets,
  /// unsupported dtype (F32, F16 and BF16 are supported), offsets out of order, overlapping or
  /// past the end (a truncated file), and a shape that disagrees with the byte length.
  static safetensors_file open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return mapping_->path(); }
  std::size_t file_size() const { return mapping_->size(); }
  const std::shared_ptr<mapped_file>& mapping() const { return mapping_; }

  /// Every tensor, in the order of its data.
  const std::vector<safetensors_entry>& entries() const { return entries_; }
  const kernels::tensor* find(std::string_view name) const;
  /// Throws checkpoint_error "<file>: no tensor <name>".
  const kernels::tensor& at(std::string_view name) const;
  /// The optional "__metadata__" string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<mapped_file> mapping_;
  std::vector<safetensors_entry> entries_;
  std::unordered_map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace glm4::model
