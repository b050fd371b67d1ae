// The parts of tokenizer_config.json the runtime uses: which chat template, and the
// added tokens (the special ids of a tokenizer.model checkpoint).
#pragma once

#include <filesystem>
#include <vector>

#include "model/json/json_file.hpp"
#include "model/tokenizer/added_tokens.hpp"
#include "model/tokenizer/chat_template.hpp"

namespace glm4::model {

struct tokenizer_config {
  chat_template_kind chat_template = chat_template_kind::glm4_chat;
  std::vector<added_token> added_tokens;  // from added_tokens_decoder; empty when absent
};

/// Throws tokenizer_error naming the file and field on malformed input.
tokenizer_config read_tokenizer_config(const std::filesystem::path& file);

/// Reads one HF added-token object (tokenizer.json "added_tokens"[i] or an
/// added_tokens_decoder value); field names where it sits, for errors.
added_token read_added_token(const json_document& file, const boost::json::value& v, token_id id,
                             const std::string& field);

}  // namespace glm4::model
