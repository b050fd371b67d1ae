// The one exception type of cluster.toml: where (file, line, column, key path) and what went wrong.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace glm4::config {

/// A position in the configuration file; line and column count from 1, 0 means unknown.
struct source_position {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

/// what() reads "cluster.toml:7:1: stage[1].layers: layers 18..20 overlap stage[0] (0..20)".
class config_error : public std::runtime_error {
 public:
  config_error(std::string file, source_position where, std::string key_path, std::string message);

  const std::string& file() const { return file_; }
  source_position where() const { return where_; }
  std::uint32_t line() const { return where_.line; }
  std::uint32_t column() const { return where_.column; }
  /// "stage[1].layers"; empty for a syntax error.
  const std::string& key_path() const { return key_path_; }
  /// The message without the location prefix.
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  source_position where_;
  std::string key_path_;
  std::string message_;
};

}  // namespace glm4::config
