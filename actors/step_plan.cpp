// Copying a step into a plan and viewing it back.
#include "actors/step_plan.hpp"

namespace glm4::actors {

step_plan make_step_plan(const model::step_batch& batch, std::span<const engine::block_copy> copies,
                         std::span<const engine::row_sampling> rows, std::span<const engine::fed_token> fed) {
  step_plan plan{batch, {copies.begin(), copies.end()}, {}, {fed.begin(), fed.end()}};
  plan.rows.reserve(rows.size());
  for (const engine::row_sampling& row : rows) {
    row_plan& planned = plan.rows.emplace_back();
    planned.params = *row.params;
    planned.seed = row.state.seed;
    planned.num_output_tokens = row.state.num_output();
    if (!engine::needs_token_history(*row.params)) continue;
    planned.prompt_token_ids.assign(row.state.prompt_token_ids.begin(), row.state.prompt_token_ids.end());
    planned.output_token_ids.assign(row.state.output_token_ids.begin(), row.state.output_token_ids.end());
  }
  return plan;
}

std::vector<engine::row_sampling> row_samplings(const step_plan& plan) {
  std::vector<engine::row_sampling> rows;
  rows.reserve(plan.rows.size());
  for (const row_plan& row : plan.rows)
    rows.push_back(
        engine::row_sampling{&row.params, {row.prompt_token_ids, row.output_token_ids, row.seed, row.num_output_tokens}});
  return rows;
}

}  // namespace glm4::actors
