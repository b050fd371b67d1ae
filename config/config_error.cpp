#include "config/config_error.hpp"

namespace glm4::config {
namespace {

std::string format(const std::string& file, source_position where, const std::string& key_path, const std::string& message) {
  std::string text = file;
  if (where.line != 0) text += ':' + std::to_string(where.line) + ':' + std::to_string(where.column);
  text += ": ";
  if (!key_path.empty()) text += key_path + ": ";
  return text + message;
}

}  // namespace

config_error::config_error(std::string file, source_position where, std::string key_path, std::string message)
    : std::runtime_error(format(file, where, key_path, message)),
      file_(std::move(file)),
      where_(where),
      key_path_(std::move(key_path)),
      message_(std::move(message)) {}

}  // namespace glm4::config
