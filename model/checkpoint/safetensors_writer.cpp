#include "model/checkpoint/safetensors_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <vector>

#include <boost/json.hpp>

#include "model/checkpoint/checkpoint_error.hpp"

namespace glm4::model {

namespace {

constexpr std::size_t header_alignment = 64;
constexpr std::size_t chunk_bytes = std::size_t{64} << 20;

std::string header_text(const std::vector<tensor_record>& records, const std::map<std::string, std::string>& metadata,
                        const std::filesystem::path& path) {
  boost::json::object header;
  if (!metadata.empty()) {
    boost::json::object meta;
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  std::size_t offset = 0;
  for (const auto& record : records) {
    if (record.type != kernels::dtype::f32 && record.type != kernels::dtype::f16 && record.type != kernels::dtype::bf16)
      throw checkpoint_error(path.string() + ": tensor \"" + record.name + "\": cannot write dtype " +
                             std::string(kernels::dtype_name(record.type)));
    if (record.name == "__metadata__" || header.contains(record.name))
      throw checkpoint_error(path.string() + ": tensor \"" + record.name + "\": duplicate or reserved name");
    boost::json::array shape;
    for (auto extent : record.shape) shape.push_back(extent);
    const std::size_t end = offset + record.nbytes();
    boost::json::object entry;
    entry["dtype"] = kernels::dtype_name(record.type);
    entry["shape"] = std::move(shape);
    entry["data_offsets"] = boost::json::array{static_cast<std::uint64_t>(offset), static_cast<std::uint64_t>(end)};
    header[record.name] = std::move(entry);
    offset = end;
  }
  std::string text = boost::json::serialize(header);
  // Spaces pad the header so the data starts 64-byte aligned (JSON ignores trailing whitespace).
  const std::size_t total = 8 + text.size();
  text.append((header_alignment - total % header_alignment) % header_alignment, ' ');
  return text;
}

class output_file {
 public:
  explicit output_file(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot create");
  }
  ~output_file() {
    if (fd_ >= 0) ::close(fd_);
  }
  output_file(const output_file&) = delete;
  output_file& operator=(const output_file&) = delete;

  void write(const void* data, std::size_t size) {
    const char* bytes = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t written = ::write(fd_, bytes, size);
      if (written < 0) {
        if (errno == EINTR) continue;
        fail("write failed");
      }
      bytes += written;
      size -= static_cast<std::size_t>(written);
    }
  }
  void close() {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("close failed");
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw checkpoint_error(path_.string() + ": " + what + ": " + std::strerror(errno));
  }
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace

std::size_t tensor_record::nbytes() const {
  std::size_t count = 1;
  for (auto extent : shape) count *= static_cast<std::size_t>(extent);
  return count * kernels::dtype_size(type);
}

std::size_t safetensors_file_size(const std::vector<tensor_record>& records, const std::map<std::string, std::string>& metadata) {
  std::size_t size = 8 + header_text(records, metadata, "").size();
  for (const auto& record : records) size += record.nbytes();
  return size;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<tensor_record>& records, const tensor_filler& fill,
                       const std::map<std::string, std::string>& metadata) {
  const std::string header = header_text(records, metadata, path);
  auto temporary = path;
  temporary += ".partial";
  try {
    output_file out(temporary);
    const std::uint64_t header_size = header.size();
    out.write(&header_size, sizeof header_size);
    out.write(header.data(), header.size());
    // Two buffers: one chunk is written on another thread while `fill` produces the next.
    std::vector<std::byte> buffers[2];
    std::future<void> pending;
    int current = 0;
    for (std::size_t index = 0; index < records.size(); ++index) {
      const std::size_t size = records[index].nbytes();
      for (std::size_t offset = 0; offset < size; offset += chunk_bytes) {
        auto& buffer = buffers[current];
        buffer.resize(std::min(chunk_bytes, size - offset));
        fill(index, offset, std::span<std::byte>(buffer));
        if (pending.valid()) pending.get();
        pending = std::async(std::launch::async, [&out, &buffer] { out.write(buffer.data(), buffer.size()); });
        current ^= 1;
      }
    }
    if (pending.valid()) pending.get();
    out.close();
    std::filesystem::rename(temporary, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw;
  }
}

void write_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, kernels::tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<tensor_record> records;
  records.reserve(tensors.size());
  for (const auto& [name, t] : tensors) records.push_back({name, t.type, t.shape});
  write_safetensors(
      path, records,
      [&](std::size_t index, std::size_t offset, std::span<std::byte> out) {
        std::memcpy(out.data(), static_cast<const std::byte*>(tensors[index].second.data) + offset, out.size());
      },
      metadata);
}

}  // namespace glm4::model
