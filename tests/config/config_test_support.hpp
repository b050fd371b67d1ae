// Shared helpers of the config tests: parse text that starts on the line after R"(, and
// assert where an error points.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "config/cluster_config.hpp"

namespace glm4::config::test {

/// Drops the newline right after R"( so line 1 of the file is the first line written.
inline cluster_config parse(std::string_view text) {
  if (text.starts_with('\n')) text.remove_prefix(1);
  return parse_cluster_config(text, "cluster.toml");
}

inline config_error parse_error(std::string_view text) {
  try {
    parse(text);
  } catch (const config_error& error) {
    return error;
  }
  FAIL("the configuration was accepted");
  throw std::logic_error("unreachable");
}

#define CHECK_ERROR_AT(error, line_, column_, key_, needle)          \
  do {                                                               \
    INFO((error).what());                                            \
    CHECK((error).line() == (line_));                                \
    CHECK((error).column() == (column_));                            \
    CHECK((error).key_path() == (key_));                             \
    CHECK(std::string((error).what()).find(needle) != std::string::npos); \
  } while (false)

}  // namespace glm4::config::test
