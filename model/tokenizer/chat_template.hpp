// The glm-4-9b-chat chat template (tokenizer_config.json "chat_template") for messages
// without tools, rendered the way transformers' apply_chat_template does.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace glm4::model {

struct chat_message {
  std::string role;  // system, user, assistant or observation
  std::string content;
};

enum class chat_template_kind {
  glm4_chat,     // glm-4-9b-chat's template, or no chat_template given
  unrecognized,  // tokenizer_config.json has another template; glm4_chat is used anyway
};

/// Recognises the glm-4-9b-chat template by its message loop.
chat_template_kind classify_chat_template(std::string_view jinja_source);

/// "[gMASK]<sop>" then "<|role|>\ncontent" for each message whose content is not empty,
/// then "<|assistant|>" when add_generation_prompt. Throws tokenizer_error naming the
/// message index for a role other than system, user, assistant or observation.
std::string render_glm4_chat(std::span<const chat_message> messages, bool add_generation_prompt = true);

}  // namespace glm4::model
