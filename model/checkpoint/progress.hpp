// Byte counts and progress lines on stderr for the large checkpoints of load and make-model.
#pragma once

#include <cstdint>
#include <string>

namespace glm4::model {

/// Above this many bytes, reading or writing a checkpoint reports progress on stderr.
constexpr std::uint64_t large_checkpoint_bytes = std::uint64_t{1} << 30;

/// "512 B", "3.4 MiB", "17.56 GiB".
std::string format_bytes(std::uint64_t bytes);

/// Writes one line to stderr, whole (lines from several threads do not interleave).
void progress_line(const std::string& text);

}  // namespace glm4::model
