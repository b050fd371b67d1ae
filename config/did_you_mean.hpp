// Suggestions for misspelt keys: "did you mean 'max_num_seqs'?".
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace glm4::config {

/// Optimal-string-alignment distance (insertions, deletions, substitutions, adjacent swaps).
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` when it is close enough to be a likely typo (distance at most
/// 2, and at most a third of the word's length for short words); nullopt otherwise.
std::optional<std::string> closest_match(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace glm4::config
