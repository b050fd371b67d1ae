// OpenAI's logprobs shapes, shared by whole responses and stream chunks so that the streamed
// pieces concatenate to the whole.
//   chat:       {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}]}
//   completion: {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob}], "text_offset": [...]}
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include <boost/json/object.hpp>

#include "engine/sampler.hpp"

namespace glm4::model {
class tokenizer;
}

namespace glm4::http {

/// The token's text (ill-formed UTF-8 replaced by U+FFFD), "token_id:<id>" without a tokenizer.
std::string token_text(engine::token_id id, const model::tokenizer* tokenizer);

boost::json::object chat_logprobs(std::span<const engine::sample_result> tokens, const model::tokenizer* tokenizer);

/// text_offset: where the first token starts in the choice's text; advanced past these tokens.
boost::json::object completion_logprobs(std::span<const engine::sample_result> tokens,
                                        const model::tokenizer* tokenizer, std::size_t& text_offset);

}  // namespace glm4::http
