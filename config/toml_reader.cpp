#include "config/toml_reader.hpp"

#include <charconv>
#include <cmath>
#include <sstream>
#include <vector>

#include "config/did_you_mean.hpp"

namespace glm4::config {

namespace {

std::string format_number(double value) {
  std::ostringstream text;
  text << value;
  return text.str();
}

}  // namespace

source_position position_of(const toml::source_region& region) {
  return {static_cast<std::uint32_t>(region.begin.line), static_cast<std::uint32_t>(region.begin.column)};
}

std::string_view type_description(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::optional<std::uint64_t> parse_byte_size(std::string_view text) {
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  std::size_t digits = 0;
  while (digits < text.size() && ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) ++digits;
  if (digits == 0) return std::nullopt;
  double amount = 0.0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + digits, amount);
  if (error != std::errc() || end != text.data() + digits) return std::nullopt;
  std::string_view unit = text.substr(digits);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  struct suffix { std::string_view name; double factor; };
  static constexpr suffix units[] = {{"", 1.0},     {"B", 1.0},     {"KB", 1e3},           {"MB", 1e6},
                                     {"GB", 1e9},   {"TB", 1e12},   {"KiB", 1024.0},       {"MiB", 1048576.0},
                                     {"GiB", 1073741824.0},        {"TiB", 1099511627776.0}};
  for (const auto& [name, factor] : units) {
    if (unit != name) continue;
    const double bytes = std::round(amount * factor);
    if (!std::isfinite(bytes) || bytes > 1.8e19) return std::nullopt;
    return static_cast<std::uint64_t>(bytes);
  }
  return std::nullopt;
}

toml_reader::toml_reader(const toml::table& table, std::string path, const std::string& file,
                         std::initializer_list<std::string_view> known_keys)
    : table_(table), path_(std::move(path)), file_(file) {
  const std::vector<std::string_view> known(known_keys);
  for (const auto& [key, node] : table_) {
    bool is_known = false;
    for (std::string_view name : known) is_known = is_known || key.str() == name;
    if (is_known) continue;
    std::string message = "unknown key '" + std::string(key.str()) + "'";
    if (auto suggestion = closest_match(key.str(), known)) message += "; did you mean '" + *suggestion + "'?";
    else {
      message += " (known keys:";
      for (std::string_view name : known) message += ' ' + std::string(name);
      message += ')';
    }
    // The key's own region is set by the parser; fall back to the value's for built tables.
    const source_position where = key.source().begin.line ? position_of(key.source()) : position_of(node.source());
    throw config_error(file_, where, key_path(key.str()), message);
  }
}

std::string toml_reader::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

source_position toml_reader::position(std::string_view key) const {
  const toml::node* node = find(key);
  return node ? position_of(node->source()) : position();
}

void toml_reader::fail(std::string_view key, const std::string& message) const { fail_at(position(key), key, message); }

void toml_reader::fail_at(source_position where, std::string_view key, const std::string& message) const {
  throw config_error(file_, where, key.empty() ? path_ : key_path(key), message);
}

void toml_reader::wrong_type(std::string_view key, const toml::node& node, const char* expected) const {
  fail(key, std::string("expected ") + expected + ", got " + std::string(type_description(node.type())));
}

std::optional<std::string> toml_reader::string(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (!node->is_string()) wrong_type(key, *node, "a string");
  return std::string(node->as_string()->get());
}

std::optional<bool> toml_reader::boolean(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (!node->is_boolean()) wrong_type(key, *node, "true or false");
  return node->as_boolean()->get();
}

std::optional<std::int64_t> toml_reader::integer(std::string_view key, std::int64_t min, std::int64_t max) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (!node->is_integer()) wrong_type(key, *node, "an integer");
  const std::int64_t value = node->as_integer()->get();
  if (value < min || value > max)
    fail(key, std::to_string(value) + " is out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")");
  return value;
}

std::optional<double> toml_reader::number(std::string_view key, double min_exclusive, double max) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  double value = 0.0;
  if (node->is_integer()) value = static_cast<double>(node->as_integer()->get());
  else if (node->is_floating_point()) value = node->as_floating_point()->get();
  else wrong_type(key, *node, "a number");
  if (!(value > min_exclusive && value <= max))
    fail(key, format_number(value) + " is out of range (more than " + format_number(min_exclusive) + ", at most " +
                  format_number(max) + ")");
  return value;
}

std::optional<std::uint64_t> toml_reader::byte_size(std::string_view key) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (node->is_integer()) {
    const std::int64_t value = node->as_integer()->get();
    if (value <= 0) fail(key, "must be a positive number of bytes");
    return static_cast<std::uint64_t>(value);
  }
  if (!node->is_string()) wrong_type(key, *node, "bytes (an integer, or a string like \"4GiB\")");
  const auto bytes = parse_byte_size(node->as_string()->get());
  if (!bytes)
    fail(key, "cannot read '" + node->as_string()->get() + "' as a size (write e.g. \"4GiB\", \"512MiB\" or a plain integer)");
  if (*bytes == 0) fail(key, "must be a positive number of bytes");
  return bytes;
}

std::optional<std::vector<std::string>> toml_reader::strings(std::string_view key,
                                                             std::vector<source_position>* positions) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  if (!node->is_array()) wrong_type(key, *node, "an array of strings");
  std::vector<std::string> values;
  for (const toml::node& element : *node->as_array()) {
    if (!element.is_string())
      fail_at(position_of(element.source()), key,
              "expected an array of strings, found " + std::string(type_description(element.type())));
    values.emplace_back(element.as_string()->get());
    if (positions) positions->push_back(position_of(element.source()));
  }
  return values;
}

std::optional<std::vector<std::int64_t>> toml_reader::integers(std::string_view key, std::size_t count) const {
  const toml::node* node = find(key);
  if (!node) return std::nullopt;
  const std::string expected = "an array of " + std::to_string(count) + " integers";
  if (!node->is_array()) wrong_type(key, *node, expected.c_str());
  const toml::array& array = *node->as_array();
  if (array.size() != count) fail(key, "expected " + expected + ", got " + std::to_string(array.size()) + " elements");
  std::vector<std::int64_t> values;
  for (const toml::node& element : array) {
    if (!element.is_integer())
      fail_at(position_of(element.source()), key,
              "expected " + expected + ", found " + std::string(type_description(element.type())));
    if (element.as_integer()->get() < 0) fail_at(position_of(element.source()), key, "must not be negative");
    values.push_back(element.as_integer()->get());
  }
  return values;
}

}  // namespace glm4::config
