// The engine's record of one request: its parameters and, per choice, the sequence and the
// detokenizing stage (incremental decoder plus stop matcher).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/request_output.hpp"
#include "engine/sampling_params.hpp"
#include "engine/sequence.hpp"
#include "engine/stop_matcher.hpp"
#include "model/tokenizer/incremental_decoder.hpp"

namespace glm4::engine {

struct choice_state {
  std::int32_t index = 0;
  std::uint64_t seed = 0;
  std::unique_ptr<sequence> seq;  // stable address: the scheduler holds pointers
  std::optional<model::incremental_decoder> decoder;  // absent without a tokenizer
  stop_matcher stops;
  bool finished = false;
};

// n > 1: choice 0 runs the prompt alone; when its prefill ends the other choices are forked
// from it (sharing its blocks) and each draws its first token from the same logits row.
struct request_state {
  request_id id = 0;
  sampling_params params;
  std::uint64_t seed = 0;
  std::int64_t num_prompt_tokens = 0;
  bool forked = false;  // n > 1 and the choices exist
  std::vector<std::unique_ptr<choice_state>> choices;
  std::int32_t num_unfinished = 0;
};

}  // namespace glm4::engine
