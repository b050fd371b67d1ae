#include "model/step_batch.hpp"

#include <stdexcept>
#include <string>

namespace glm4::model {
namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("step_batch: " + what); }

}  // namespace

void add_sequence(step_batch& batch, std::span<const std::int32_t> tokens, std::int32_t first_position,
                  std::span<const std::int32_t> blocks, logit_rows wanted) {
  const auto num_new = static_cast<std::int32_t>(tokens.size());
  const std::int64_t context = static_cast<std::int64_t>(first_position) + num_new;
  if (first_position < 0) fail("negative first position");
  if (context > static_cast<std::int64_t>(blocks.size()) * batch.block_size)
    fail("a sequence of " + std::to_string(context) + " tokens does not fit in " + std::to_string(blocks.size()) +
         " blocks of " + std::to_string(batch.block_size));

  const auto width = static_cast<std::int32_t>(blocks.size());
  if (width > batch.max_blocks_per_seq) {
    std::vector<std::int32_t> wider(static_cast<std::size_t>(batch.num_seqs() * width), 0);
    for (std::int64_t s = 0; s < batch.num_seqs(); ++s)
      for (std::int32_t b = 0; b < batch.max_blocks_per_seq; ++b)
        wider[static_cast<std::size_t>(s * width + b)] = batch.block_table[static_cast<std::size_t>(s * batch.max_blocks_per_seq + b)];
    batch.block_table = std::move(wider);
    batch.max_blocks_per_seq = width;
  }
  const std::size_t row_start = batch.block_table.size();
  batch.block_table.resize(row_start + static_cast<std::size_t>(batch.max_blocks_per_seq), 0);
  for (std::int32_t b = 0; b < width; ++b) batch.block_table[row_start + static_cast<std::size_t>(b)] = blocks[static_cast<std::size_t>(b)];

  const auto first_row = static_cast<std::int32_t>(batch.token_ids.size());
  for (std::int32_t i = 0; i < num_new; ++i) {
    const std::int32_t position = first_position + i;
    batch.token_ids.push_back(tokens[static_cast<std::size_t>(i)]);
    batch.positions.push_back(position);
    batch.slot_mapping.push_back(blocks[static_cast<std::size_t>(position / batch.block_size)] * batch.block_size +
                                 position % batch.block_size);
  }
  batch.query_start.push_back(first_row + num_new);
  batch.context_len.push_back(static_cast<std::int32_t>(context));
  if (wanted == logit_rows::last && num_new > 0) batch.logit_rows.push_back(first_row + num_new - 1);
  if (wanted == logit_rows::all)
    for (std::int32_t i = 0; i < num_new; ++i) batch.logit_rows.push_back(first_row + i);
}

void validate(const step_batch& batch) {
  const std::int64_t num_tokens = batch.num_tokens(), num_seqs = batch.num_seqs();
  if (batch.block_size <= 0) fail("block_size must be positive");
  if (static_cast<std::int64_t>(batch.positions.size()) != num_tokens ||
      static_cast<std::int64_t>(batch.slot_mapping.size()) != num_tokens)
    fail("token_ids, positions and slot_mapping differ in length");
  if (static_cast<std::int64_t>(batch.query_start.size()) != num_seqs + 1) fail("query_start needs num_seqs + 1 entries");
  if (batch.max_blocks_per_seq < 0 ||
      static_cast<std::int64_t>(batch.block_table.size()) != num_seqs * batch.max_blocks_per_seq)
    fail("block_table is not num_seqs x max_blocks_per_seq");
  if (batch.query_start.front() != 0 || batch.query_start.back() != num_tokens)
    fail("query_start must run from 0 to T = " + std::to_string(num_tokens));
  for (std::int64_t s = 0; s < num_seqs; ++s) {
    const std::int32_t first = batch.query_start[static_cast<std::size_t>(s)], last = batch.query_start[static_cast<std::size_t>(s + 1)];
    const std::int32_t context = batch.context_len[static_cast<std::size_t>(s)];
    if (last < first) fail("query_start decreases at sequence " + std::to_string(s));
    if (context < 0 || static_cast<std::int64_t>(context) > static_cast<std::int64_t>(batch.max_blocks_per_seq) * batch.block_size)
      fail("context of sequence " + std::to_string(s) + " does not fit its block table row");
    for (std::int32_t t = first; t < last; ++t) {
      const std::int32_t position = batch.positions[static_cast<std::size_t>(t)];
      if (position < 0 || position >= context)
        fail("row " + std::to_string(t) + " at position " + std::to_string(position) + " is outside the context of sequence " +
             std::to_string(s));
      const std::int32_t block = batch.block_table[static_cast<std::size_t>(s * batch.max_blocks_per_seq + position / batch.block_size)];
      if (batch.slot_mapping[static_cast<std::size_t>(t)] != block * batch.block_size + position % batch.block_size)
        fail("slot of row " + std::to_string(t) + " disagrees with its block table");
    }
  }
  for (std::int32_t row : batch.logit_rows)
    if (row < 0 || row >= num_tokens) fail("logit row " + std::to_string(row) + " is outside [0, " + std::to_string(num_tokens) + ")");
}

}  // namespace glm4::model
