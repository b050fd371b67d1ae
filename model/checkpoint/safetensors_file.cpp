#include "model/checkpoint/safetensors_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "model/checkpoint/checkpoint_error.hpp"
#include "model/json/json_file.hpp"

namespace glm4::model {

namespace {

constexpr std::size_t header_length_bytes = 8;

std::string system_error_text(int error) { return std::strerror(error); }

struct header_reader {
  const std::filesystem::path& path;

  [[noreturn]] void fail(const std::string& what) const { throw checkpoint_error(path.string() + ": " + what); }
  [[noreturn]] void fail(const std::string& tensor, const std::string& what) const {
    fail("tensor \"" + tensor + "\": " + what);
  }

  const boost::json::value& field(const std::string& tensor, const boost::json::object& entry, const char* key) const {
    const auto* value = entry.if_contains(key);
    if (!value) fail(tensor, std::string("missing \"") + key + "\"");
    return *value;
  }

  std::uint64_t unsigned_number(const std::string& tensor, const char* key, const boost::json::value& value) const {
    if (value.is_uint64()) return value.get_uint64();
    if (value.is_int64() && value.get_int64() >= 0) return static_cast<std::uint64_t>(value.get_int64());
    fail(tensor, std::string("\"") + key + "\" holds " + boost::json::serialize(value) + ", not a non-negative integer");
  }

  safetensors_entry entry(const std::string& name, const boost::json::value& value, std::size_t data_size) const {
    const auto* object = value.if_object();
    if (!object) fail(name, "expected an object with dtype, shape and data_offsets");
    safetensors_entry result;
    result.name = name;

    const auto& dtype_value = field(name, *object, "dtype");
    if (!dtype_value.is_string()) fail(name, "\"dtype\" is not a string");
    const std::string dtype_text(dtype_value.get_string());
    const auto type = kernels::parse_dtype(dtype_text);
    if (!type || *type == kernels::dtype::i32)
      fail(name, "unsupported dtype \"" + dtype_text + "\" (supported: F32, F16, BF16)");
    result.view.type = *type;

    const auto* shape = field(name, *object, "shape").if_array();
    if (!shape) fail(name, "\"shape\" is not an array");
    for (const auto& extent : *shape) {
      const auto size = unsigned_number(name, "shape", extent);
      if (size > (std::uint64_t{1} << 48)) fail(name, "shape extent " + std::to_string(size) + " is implausibly large");
      result.view.shape.push_back(static_cast<std::int64_t>(size));
    }

    const auto* offsets = field(name, *object, "data_offsets").if_array();
    if (!offsets || offsets->size() != 2) fail(name, "\"data_offsets\" is not a [begin, end] pair");
    result.begin = unsigned_number(name, "data_offsets", (*offsets)[0]);
    result.end = unsigned_number(name, "data_offsets", (*offsets)[1]);
    if (result.begin > result.end)
      fail(name, "data_offsets [" + std::to_string(result.begin) + ", " + std::to_string(result.end) + "] are out of order");
    if (result.end > data_size)
      fail(name, "data_offsets [" + std::to_string(result.begin) + ", " + std::to_string(result.end) + "] run past the end of the data (" +
                     std::to_string(data_size) + " bytes): the file is truncated");
    if (result.view.nbytes() != result.end - result.begin)
      fail(name, "shape " + kernels::describe(result.view) + " needs " + std::to_string(result.view.nbytes()) +
                     " bytes but data_offsets give " + std::to_string(result.end - result.begin));
    return result;
  }
};

}  // namespace

mapped_file::mapped_file(std::filesystem::path path, const std::byte* data, std::size_t size)
    : path_(std::move(path)), data_(data), size_(size) {}

mapped_file::~mapped_file() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

std::shared_ptr<mapped_file> mapped_file::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw checkpoint_error(path.string() + ": cannot open: " + system_error_text(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    throw checkpoint_error(path.string() + ": cannot stat: " + system_error_text(error));
  }
  const auto size = static_cast<std::size_t>(info.st_size);
  void* data = nullptr;
  if (size > 0) {
    data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (data == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      throw checkpoint_error(path.string() + ": cannot map " + std::to_string(size) + " bytes: " + system_error_text(error));
    }
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return std::shared_ptr<mapped_file>(new mapped_file(path, static_cast<const std::byte*>(data), size));
}

safetensors_file safetensors_file::open(const std::filesystem::path& path) {
  safetensors_file file;
  file.mapping_ = mapped_file::open(path);
  const header_reader reader{path};
  const std::size_t size = file.mapping_->size();
  if (size < header_length_bytes)
    reader.fail("file is " + std::to_string(size) + " bytes, too small for a safetensors header (truncated?)");

  std::uint64_t header_size = 0;
  std::memcpy(&header_size, file.mapping_->data(), sizeof header_size);  // little-endian, as is every target
  if (header_size > size - header_length_bytes)
    reader.fail("header length " + std::to_string(header_size) + " runs past the end of the file (" + std::to_string(size) +
                " bytes): truncated, or not a safetensors file");

  const std::string_view header_text(reinterpret_cast<const char*>(file.mapping_->data()) + header_length_bytes, header_size);
  const auto header = parse_json_text(header_text, path.string() + " (safetensors header)", throw_checkpoint_error);
  const auto* object = header.if_object();
  if (!object) reader.fail("the safetensors header is not a JSON object");

  const std::size_t data_start = header_length_bytes + header_size;
  const std::size_t data_size = size - data_start;
  for (const auto& [key, value] : *object) {
    const std::string name(key);
    if (name == "__metadata__") {
      const auto* metadata = value.if_object();
      if (!metadata) reader.fail("\"__metadata__\" is not an object");
      for (const auto& [meta_key, meta_value] : *metadata) {
        if (!meta_value.is_string()) reader.fail("\"__metadata__\" value of \"" + std::string(meta_key) + "\" is not a string");
        file.metadata_[std::string(meta_key)] = std::string(meta_value.get_string());
      }
      continue;
    }
    file.entries_.push_back(reader.entry(name, value, data_size));
  }

  std::sort(file.entries_.begin(), file.entries_.end(), [](const auto& a, const auto& b) { return a.begin < b.begin; });
  const std::byte* data = file.mapping_->data() + data_start;
  for (std::size_t i = 0; i < file.entries_.size(); ++i) {
    auto& entry = file.entries_[i];
    if (i > 0 && entry.begin < file.entries_[i - 1].end && entry.begin != entry.end)
      reader.fail(entry.name, "data_offsets overlap those of tensor \"" + file.entries_[i - 1].name + "\"");
    entry.view.data = const_cast<std::byte*>(data + entry.begin);
    entry.view.owner = file.mapping_;
    file.index_.emplace(entry.name, i);
  }
  return file;
}

const kernels::tensor* safetensors_file::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second].view;
}

const kernels::tensor& safetensors_file::at(std::string_view name) const {
  const auto* view = find(name);
  if (!view) throw checkpoint_error(path().string() + ": no tensor \"" + std::string(name) + "\"");
  return *view;
}

}  // namespace glm4::model
