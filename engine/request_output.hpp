// What the engine reports about one choice of one request after a step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampler.hpp"

namespace glm4::engine {

using request_id = std::uint64_t;

enum class finish_reason { stop, length, abort, error };

/// "stop", "length", "abort", "error" (OpenAI's finish_reason words where OpenAI has one).
std::string_view to_string(finish_reason reason);

/// One event: the tokens a choice gained this step, their text, and how it ended if it did.
struct request_output {
  request_id request = 0;
  std::int32_t index = 0;             // which of the request's n choices
  std::vector<sample_result> tokens;  // ids (and logprobs when asked) new this step
  std::string text;                   // new text; held back while it may start a stop string
  std::optional<finish_reason> finish;
  std::string message;  // error: what failed; stop: the stop string that matched, if one did
  std::int64_t num_prompt_tokens = 0;
  std::int64_t num_output_tokens = 0;  // of this choice so far, stop tokens included
};

}  // namespace glm4::engine
