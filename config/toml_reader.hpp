// Typed, position-aware reads from one toml++ table: every mistake becomes a config_error with
// the file, the line and column of the offending key or value, and the dotted key path.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "config/config_error.hpp"

namespace glm4::config {

source_position position_of(const toml::source_region& region);

class toml_reader {
 public:
  /// Refuses every key of `table` not in `known_keys`, suggesting the closest known one.
  toml_reader(const toml::table& table, std::string path, const std::string& file,
              std::initializer_list<std::string_view> known_keys);

  const toml::table& table() const { return table_; }
  /// "stage[1].layers" for key "layers" under path "stage[1]".
  std::string key_path(std::string_view key) const;
  source_position position() const { return position_of(table_.source()); }
  /// The value's position, or the table's when the key is absent.
  source_position position(std::string_view key) const;
  bool has(std::string_view key) const { return table_.contains(key); }

  std::optional<std::string> string(std::string_view key) const;
  std::optional<bool> boolean(std::string_view key) const;
  /// An integer in [min, max].
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) const;
  /// An integer or float in (min, max] (min exclusive: fractions and timeouts are never 0).
  std::optional<double> number(std::string_view key, double min_exclusive, double max) const;
  /// An integer, or a string with a unit: "512MiB", "4GiB", "1.5GB".
  std::optional<std::uint64_t> byte_size(std::string_view key) const;
  /// An array of strings; each element's position comes back in `positions` when given.
  std::optional<std::vector<std::string>> strings(std::string_view key, std::vector<source_position>* positions = nullptr) const;
  /// An array of exactly `count` integers, each >= 0.
  std::optional<std::vector<std::int64_t>> integers(std::string_view key, std::size_t count) const;

  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  [[noreturn]] void fail_at(source_position where, std::string_view key, const std::string& message) const;

 private:
  const toml::node* find(std::string_view key) const { return table_.get(key); }
  [[noreturn]] void wrong_type(std::string_view key, const toml::node& node, const char* expected) const;

  const toml::table& table_;
  std::string path_;
  const std::string& file_;
};

/// "an integer", "a string", "a table", ... for messages.
std::string_view type_description(toml::node_type type);

/// Parses "4GiB", "512 MiB", "8GB", "1024" into bytes; nullopt when malformed.
std::optional<std::uint64_t> parse_byte_size(std::string_view text);

}  // namespace glm4::config
