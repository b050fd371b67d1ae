// Decode steps padded to a few fixed shapes, so a backend can record a step's ops once per shape
// and replay them (CUDA graphs): every kernel argument and buffer is then the same at each replay.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>

#include "model/step_batch.hpp"

namespace glm4::model {

/// The shape a decode step is padded to: its rows, and the block table's row stride.
struct decode_shape {
  std::int32_t num_rows = 0;
  std::int32_t table_stride = 0;
  bool operator==(const decode_shape&) const = default;

  /// One key per shape and recorder (a model: two on one backend must not replay each other's
  /// steps), for backend::run_recorded. Rows and stride are powers of two; recorder < 2^48.
  std::uint64_t key(std::uint64_t recorder = 0) const {
    return recorder << 16 | static_cast<std::uint64_t>(std::countr_zero(static_cast<std::uint32_t>(num_rows))) << 8 |
           static_cast<std::uint64_t>(std::countr_zero(static_cast<std::uint32_t>(table_stride)));
  }
};

/// Decode steps of more rows than this run unrecorded (prefill-sized batches gain little).
inline constexpr std::int32_t max_recorded_rows = 512;

/// The padded shape of a step in which every sequence brings one token, rows and stride rounded
/// up to powers of two (so few shapes are ever recorded); nullopt for any other step, or one of
/// more than max_recorded_rows rows.
std::optional<decode_shape> recordable_decode_shape(const step_batch& batch);

/// `batch` with padding rows after its own, each a sequence of its own: token 0 at position 0, a
/// context of one token read from block 0, and slot -1 (backends store nothing for a negative
/// slot), so padding neither reads nor writes anything a real row uses. Block table rows are
/// widened to shape.table_stride. The real rows keep their indices, logit rows included.
step_batch pad_decode_batch(const step_batch& batch, const decode_shape& shape);

}  // namespace glm4::model
