// CAF 0.17 inspect() for everything a step carries between the scheduler and the devices (and the
// memory reports that size the KV pool), so a step_plan and its step_results can cross a process or host boundary (remote nodes) instead of
// being whitelisted as local-only. The engine and model types stay free of CAF: their inspect()
// overloads live here, in the types' own namespaces so that argument-dependent lookup finds them.
#pragma once

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/none.hpp>

#include <optional>

#include "actors/step_plan.hpp"
#include "engine/kv_pool.hpp"
#include "engine/sampling_params.hpp"
#include "kernels/comm/group_ticket.hpp"
#include "model/step_batch.hpp"

namespace glm4::model {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_batch& x) {
  return f(caf::meta::type_name("step_batch"), x.block_size, x.token_ids, x.positions, x.slot_mapping, x.query_start,
           x.context_len, x.block_table, x.max_blocks_per_seq, x.logit_rows);
}

}  // namespace glm4::model

namespace glm4::engine {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, block_copy& x) {
  return f(caf::meta::type_name("block_copy"), x.src, x.dst);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sampling_params& x) {
  // CAF 0.17 has no std::optional: each one travels as a flag and a value, rebuilt after loading.
  bool has_seed = x.seed.has_value(), has_max_tokens = x.max_tokens.has_value();
  std::uint64_t seed = x.seed.value_or(0);
  std::int32_t max_tokens = x.max_tokens.value_or(0);
  auto rebuild = caf::meta::load_callback([&]() -> caf::error {
    x.seed = has_seed ? std::optional<std::uint64_t>(seed) : std::nullopt;
    x.max_tokens = has_max_tokens ? std::optional<std::int32_t>(max_tokens) : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("sampling_params"), x.temperature, x.top_k, x.top_p, x.min_p, x.repetition_penalty,
           x.presence_penalty, x.frequency_penalty, has_seed, seed, x.logit_bias, x.stop_token_ids, x.stop, has_max_tokens,
           max_tokens, x.min_tokens, x.ignore_eos, x.logprobs, x.top_logprobs, x.n, rebuild);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fed_token& x) {
  return f(caf::meta::type_name("fed_token"), x.token_index, x.previous_row);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_logprob& x) {
  return f(caf::meta::type_name("token_logprob"), x.id, x.logprob);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sample_result& x) {
  bool has_logprob = x.logprob.has_value();
  float logprob = x.logprob.value_or(0.0f);
  auto rebuild = caf::meta::load_callback([&]() -> caf::error {
    x.logprob = has_logprob ? std::optional<float>(logprob) : std::nullopt;
    return caf::none;
  });
  return f(caf::meta::type_name("sample_result"), x.token, has_logprob, logprob, x.top_logprobs, rebuild);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, memory_report& x) {
  return f(caf::meta::type_name("memory_report"), x.device, x.kv_budget_bytes, x.kv_bytes_per_block);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kv_pool_size& x) {
  return f(caf::meta::type_name("kv_pool_size"), x.num_blocks, x.max_model_len, x.largest_block_bytes, x.note);
}

}  // namespace glm4::engine

namespace glm4::actors {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, row_plan& x) {
  return f(caf::meta::type_name("row_plan"), x.params, x.prompt_token_ids, x.output_token_ids, x.seed,
           x.num_output_tokens);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_plan& x) {
  return f(caf::meta::type_name("step_plan"), x.batch, x.copies, x.rows, x.fed);
}

}  // namespace glm4::actors

namespace glm4::kernels::comm {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, group_ticket& x) {
  return f(caf::meta::type_name("group_ticket"), x.id, x.rank, x.size);
}

}  // namespace glm4::kernels::comm
