#include "model/tokenizer/tokenizer_config.hpp"

#include <algorithm>
#include <charconv>

#include "model/json/json_file.hpp"
#include "model/tokenizer/tokenizer_error.hpp"

namespace glm4::model {

added_token read_added_token(const json_document& file, const boost::json::value& v, token_id id,
                             const std::string& field) {
  const boost::json::object& o = file.object(v, field);
  added_token token;
  token.id = id;
  token.content = file.string(file.required(o, "content", field + ".content"), field + ".content");
  if (token.content.empty()) file.fail(field + ".content", "an added token cannot be empty");
  const auto flag = [&](std::string_view key, bool fallback) {
    const boost::json::value* f = file.member(o, key);
    return f ? file.boolean(*f, field + "." + std::string(key)) : fallback;
  };
  token.is_special = flag("special", false);
  token.lstrip = flag("lstrip", false);
  token.rstrip = flag("rstrip", false);
  if (flag("single_word", false))
    file.fail(field + ".single_word", "single_word added tokens are not supported");
  return token;
}

tokenizer_config read_tokenizer_config(const std::filesystem::path& path) {
  const json_document file(path, throw_tokenizer_error);
  const boost::json::object& root = file.object(file.root(), "(top level)");
  tokenizer_config config;
  if (const boost::json::value* t = file.member(root, "chat_template")) {
    if (t->is_string()) {
      config.chat_template = classify_chat_template(t->get_string());
    } else {
      // transformers also accepts a list of named templates; only "default" is rendered.
      config.chat_template = chat_template_kind::unrecognized;
      for (const boost::json::value& entry : file.array(*t, "chat_template")) {
        const boost::json::object& named = file.object(entry, "chat_template[]");
        const boost::json::value* name = file.member(named, "name");
        const boost::json::value* source = file.member(named, "template");
        if (name && source && name->is_string() && name->get_string() == "default" && source->is_string()) {
          config.chat_template = classify_chat_template(source->get_string());
        }
      }
    }
  }
  if (const boost::json::value* decoder = file.member(root, "added_tokens_decoder")) {
    for (const auto& [key, value] : file.object(*decoder, "added_tokens_decoder")) {
      const std::string field = "added_tokens_decoder." + std::string(key);
      token_id id = 0;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc{} || end != key.data() + key.size() || id < 0) {
        file.fail(field, "the key is not a token id");
      }
      config.added_tokens.push_back(read_added_token(file, value, id, field));
    }
    std::sort(config.added_tokens.begin(), config.added_tokens.end(),
              [](const added_token& a, const added_token& b) { return a.id < b.id; });
  }
  return config;
}

}  // namespace glm4::model
