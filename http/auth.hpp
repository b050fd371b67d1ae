// API keys: "Authorization: Bearer <key>" checked against a set of keys in constant time.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace glm4::http {

/// The token of "Bearer <token>" (scheme case-insensitive, spaces around it allowed); nullopt
/// for another scheme or an empty token.
std::optional<std::string_view> bearer_token(std::string_view authorization);

/// Equal without an early exit: the time depends on the lengths, not on where the bytes differ.
bool constant_time_equal(std::string_view a, std::string_view b);

class api_keys {
 public:
  api_keys() = default;
  /// Empty keys are dropped.
  explicit api_keys(std::vector<std::string> keys);
  /// One key per line; blank lines and lines starting with '#' skipped; surrounding whitespace
  /// trimmed. Throws std::runtime_error naming the file when it cannot be read or holds no key.
  static api_keys load_file(const std::filesystem::path& file);

  /// No keys configured: every request is allowed.
  bool empty() const { return keys_.empty(); }
  std::size_t size() const { return keys_.size(); }
  const std::vector<std::string>& keys() const { return keys_; }
  /// Compares against every key, never stopping at the first match.
  bool accepts(std::string_view token) const;
  /// The whole check for one request's Authorization header (absent: nullopt).
  bool authorizes(std::optional<std::string_view> authorization) const;

 private:
  std::vector<std::string> keys_;
};

/// Routes open without a key: /health only, so a load balancer can probe.
bool path_requires_key(std::string_view path);

}  // namespace glm4::http
