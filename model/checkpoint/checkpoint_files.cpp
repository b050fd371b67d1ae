#include "model/checkpoint/checkpoint_files.hpp"

#include <algorithm>
#include <chrono>
#include <map>

#include "model/checkpoint/checkpoint_error.hpp"
#include "model/json/json_file.hpp"
#include "model/checkpoint/progress.hpp"

namespace glm4::model {

namespace {

namespace fs = std::filesystem;

constexpr const char* index_name = "model.safetensors.index.json";
constexpr const char* single_name = "model.safetensors";

[[noreturn]] void no_weights(const fs::path& dir) {
  std::string found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    const auto name = entry.path().filename().string();
    if (name.ends_with(".bin") || name.ends_with(".safetensors") || name.ends_with(".pt") || name.ends_with(".gguf"))
      found += (found.empty() ? "" : ", ") + name;
  }
  throw checkpoint_error(dir.string() + ": no " + single_name + " or " + index_name +
                         (found.empty() ? std::string() : " (found " + found + "; only safetensors checkpoints are supported)"));
}

// Shard file name -> the tensors the index places there.
std::map<std::string, std::vector<std::string>> read_index(const fs::path& path) {
  const auto value = parse_json_file(path, throw_checkpoint_error);
  const json_fields index(value, path.string(), throw_checkpoint_error);
  const auto* map = index.find("weight_map");
  if (!map) index.fail("weight_map", "missing");
  if (!map->is_object()) index.fail("weight_map", "expected an object of tensor name -> file name");
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto& [tensor, file] : map->get_object()) {
    if (!file.is_string()) index.fail("weight_map", "tensor \"" + std::string(tensor) + "\" maps to " + boost::json::serialize(file) + ", not a file name");
    const std::string name(file.get_string());
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      index.fail("weight_map", "tensor \"" + std::string(tensor) + "\" maps to \"" + name + "\", not a file in this directory");
    shards[name].emplace_back(tensor);
  }
  if (shards.empty()) index.fail("weight_map", "is empty");
  return shards;
}

}  // namespace

std::uint64_t checkpoint_files::total_bytes() const {
  std::uint64_t total = 0;
  for (const auto& file : files) total += file.file_size();
  return total;
}

checkpoint_files open_checkpoint_files(const fs::path& dir) {
  checkpoint_files result;
  std::map<std::string, std::vector<std::string>> shards;
  if (fs::exists(dir / index_name)) {
    result.index_path = dir / index_name;
    shards = read_index(*result.index_path);
  } else if (fs::exists(dir / single_name)) {
    shards[single_name] = {};
  } else {
    no_weights(dir);
  }

  std::uint64_t total = 0;
  for (const auto& [name, tensors] : shards) {
    const auto path = dir / name;
    std::error_code error;
    const auto size = fs::file_size(path, error);
    if (error)
      throw checkpoint_error(path.string() + ": " + (result.index_path ? "named by " + result.index_path->string() + " but " : "") +
                             "cannot be read: " + error.message());
    total += size;
  }
  const bool report = total > large_checkpoint_bytes;
  if (report) progress_line("checkpoint: mapping " + std::to_string(shards.size()) + " file(s), " + format_bytes(total) + " from " + dir.string());

  std::size_t position = 0;
  for (const auto& [name, tensors] : shards) {
    const auto started = std::chrono::steady_clock::now();
    auto file = safetensors_file::open(dir / name);
    for (const auto& tensor : tensors)
      if (!file.find(tensor))
        throw checkpoint_error(file.path().string() + ": no tensor \"" + tensor + "\", which " + result.index_path->string() + " places there");
    for (const auto& entry : file.entries()) result.file_of.emplace(entry.name, result.files.size());
    ++position;
    if (report) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      char timing[32];
      std::snprintf(timing, sizeof timing, "%.2f s", seconds);
      progress_line("  [" + std::to_string(position) + "/" + std::to_string(shards.size()) + "] " + name + " " +
                    format_bytes(file.file_size()) + ", " + std::to_string(file.entries().size()) + " tensors (" + timing + ")");
    }
    result.files.push_back(std::move(file));
  }
  return result;
}

}  // namespace glm4::model
