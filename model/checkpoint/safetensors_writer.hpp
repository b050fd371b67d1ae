// Writes .safetensors files: a header padded to 64 bytes, then each tensor's bytes in order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "kernels/tensor.hpp"

namespace glm4::model {

struct tensor_record {
  std::string name;
  kernels::dtype type = kernels::dtype::bf16;
  std::vector<std::int64_t> shape;

  std::size_t nbytes() const;
};

/// Produces bytes [byte_offset, byte_offset + out.size()) of tensor `index`; offsets and sizes
/// are whole elements.
using tensor_filler = std::function<void(std::size_t index, std::size_t byte_offset, std::span<std::byte> out)>;

/// Writes `records` (in that order) to `path` through `fill`, in chunks of at most 64 MiB, via a
/// temporary file renamed into place. F32, F16 and BF16 only. Throws checkpoint_error naming
/// the file (and the tensor for a bad record).
void write_safetensors(const std::filesystem::path& path, const std::vector<tensor_record>& records, const tensor_filler& fill,
                       const std::map<std::string, std::string>& metadata = {});

/// Writes host tensors.
void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, kernels::tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// The size the file for `records` will have.
std::size_t safetensors_file_size(const std::vector<tensor_record>& records, const std::map<std::string, std::string>& metadata = {});

}  // namespace glm4::model
