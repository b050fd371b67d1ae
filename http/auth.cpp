// Bearer tokens and constant-time key comparison.
#include "http/auth.hpp"

#include <fstream>
#include <stdexcept>

namespace glm4::http {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  authorization = trim(authorization);
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size() || !is_space(authorization[scheme.size()])) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (lower(authorization[i]) != scheme[i]) return std::nullopt;
  const std::string_view token = trim(authorization.substr(scheme.size()));
  if (token.empty()) return std::nullopt;
  return token;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the key (a) in full whatever b holds; volatile keeps the compiler from adding an early exit.
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const unsigned char other = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | (static_cast<unsigned char>(a[i]) ^ other);
  }
  return diff == 0;
}

api_keys::api_keys(std::vector<std::string> keys) {
  for (auto& key : keys)
    if (!key.empty()) keys_.push_back(std::move(key));
}

api_keys api_keys::load_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(file.string() + ": cannot read the API key file");
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    const std::string_view key = trim(line);
    if (key.empty() || key.front() == '#') continue;
    keys.emplace_back(key);
  }
  if (keys.empty()) throw std::runtime_error(file.string() + ": the API key file holds no key");
  return api_keys(std::move(keys));
}

bool api_keys::accepts(std::string_view token) const {
  bool match = false;
  for (const auto& key : keys_) match = constant_time_equal(key, token) | match;
  return match;
}

bool api_keys::authorizes(std::optional<std::string_view> authorization) const {
  if (empty()) return true;
  if (!authorization) return false;
  const auto token = bearer_token(*authorization);
  return token && accepts(*token);
}

bool path_requires_key(std::string_view path) { return path != "/health"; }

}  // namespace glm4::http
