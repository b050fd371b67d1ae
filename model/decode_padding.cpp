#include "model/decode_padding.hpp"

#include <bit>
#include <stdexcept>

namespace glm4::model {

std::optional<decode_shape> recordable_decode_shape(const step_batch& batch) {
  const std::int64_t num_rows = batch.num_tokens();
  if (num_rows == 0 || num_rows != batch.num_seqs() || num_rows > max_recorded_rows) return std::nullopt;
  for (std::int64_t s = 0; s < batch.num_seqs(); ++s)
    if (batch.query_start[static_cast<std::size_t>(s + 1)] - batch.query_start[static_cast<std::size_t>(s)] != 1)
      return std::nullopt;
  return decode_shape{static_cast<std::int32_t>(std::bit_ceil(static_cast<std::uint64_t>(num_rows))),
                      static_cast<std::int32_t>(std::bit_ceil(static_cast<std::uint64_t>(std::max(1, batch.max_blocks_per_seq))))};
}

step_batch pad_decode_batch(const step_batch& batch, const decode_shape& shape) {
  const auto num_rows = static_cast<std::int32_t>(batch.num_tokens());
  if (num_rows > shape.num_rows || batch.max_blocks_per_seq > shape.table_stride || num_rows != batch.num_seqs())
    throw std::invalid_argument("pad_decode_batch: a step of " + std::to_string(num_rows) + " rows and " +
                                std::to_string(batch.max_blocks_per_seq) + " blocks per sequence does not fit the shape");
  step_batch padded = batch;
  padded.max_blocks_per_seq = shape.table_stride;
  padded.block_table.assign(static_cast<std::size_t>(shape.num_rows) * static_cast<std::size_t>(shape.table_stride), 0);
  for (std::int32_t s = 0; s < num_rows; ++s)
    for (std::int32_t b = 0; b < batch.max_blocks_per_seq; ++b)
      padded.block_table[static_cast<std::size_t>(s * shape.table_stride + b)] =
          batch.block_table[static_cast<std::size_t>(s * batch.max_blocks_per_seq + b)];
  for (std::int32_t row = num_rows; row < shape.num_rows; ++row) {
    padded.token_ids.push_back(0);
    padded.positions.push_back(0);
    padded.slot_mapping.push_back(-1);
    padded.query_start.push_back(row + 1);
    padded.context_len.push_back(1);
  }
  return padded;
}

}  // namespace glm4::model
