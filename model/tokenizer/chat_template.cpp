#include "model/tokenizer/chat_template.hpp"

#include <array>

#include "model/tokenizer/tokenizer_error.hpp"

namespace glm4::model {
namespace {

constexpr std::array<std::string_view, 4> known_roles = {"system", "user", "assistant", "observation"};

}  // namespace

chat_template_kind classify_chat_template(std::string_view jinja_source) {
  constexpr std::string_view message_loop =
      "{% if item['content'] %}<|{{ item['role'] }}|>{{ item['metadata'] }}\n{{ item['content'] }}{% endif "
      "%}";
  const bool is_glm4 = jinja_source.starts_with("[gMASK]<sop>{% for item in messages %}") &&
                       jinja_source.find(message_loop) != std::string_view::npos &&
                       jinja_source.ends_with("{% if add_generation_prompt %}<|assistant|>{% endif %}");
  return is_glm4 ? chat_template_kind::glm4_chat : chat_template_kind::unrecognized;
}

std::string render_glm4_chat(std::span<const chat_message> messages, bool add_generation_prompt) {
  std::string text = "[gMASK]<sop>";
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const chat_message& message = messages[i];
    bool is_known = false;
    for (std::string_view role : known_roles) is_known = is_known || message.role == role;
    if (!is_known) {
      throw tokenizer_error("chat message " + std::to_string(i) + ": unknown role \"" + message.role +
                            "\" (expected system, user, assistant or observation)");
    }
    // The template skips a message whose content is empty ({% if item['content'] %}); the
    // undefined item['metadata'] renders as nothing.
    if (message.content.empty()) continue;
    text += "<|";
    text += message.role;
    text += "|>\n";
    text += message.content;
  }
  if (add_generation_prompt) text += "<|assistant|>";
  return text;
}

}  // namespace glm4::model
