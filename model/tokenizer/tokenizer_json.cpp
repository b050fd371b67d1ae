// tokenizer::load_tokenizer_json: HF tokenizer.json with a byte-level BPE model.
#include <boost/json.hpp>

#include "model/json/json_file.hpp"
#include "model/tokenizer/byte_level.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/tokenizer_config.hpp"
#include "model/tokenizer/tokenizer_error.hpp"

namespace glm4::model {
namespace {

std::string_view type_of(const json_document& file, const boost::json::object& o,
                         const std::string& field) {
  return file.string(file.required(o, "type", field + ".type"), field + ".type");
}

bool flag_or(const json_document& file, const boost::json::object& o, std::string_view key,
             bool fallback, const std::string& field) {
  const boost::json::value* v = file.member(o, key);
  return v ? file.boolean(*v, field + "." + std::string(key)) : fallback;
}

// The ByteLevel step: returns the split pattern it implies (GPT-2's when use_regex).
std::optional<std::string> read_byte_level(const json_document& file, const boost::json::object& o,
                                           const std::string& field) {
  if (flag_or(file, o, "add_prefix_space", false, field)) {
    file.fail(field + ".add_prefix_space", "true is not supported (GLM-4 uses false)");
  }
  if (flag_or(file, o, "use_regex", true, field)) return std::string(gpt2_split_pattern);
  return std::nullopt;
}

std::string read_split(const json_document& file, const boost::json::object& o,
                       const std::string& field) {
  const boost::json::object& pattern =
      file.object(file.required(o, "pattern", field + ".pattern"), field + ".pattern");
  const boost::json::value* regex = file.member(pattern, "Regex");
  if (regex == nullptr) file.fail(field + ".pattern", "only a {\"Regex\": ...} pattern is supported");
  const boost::json::value* behavior = file.member(o, "behavior");
  if (behavior && file.string(*behavior, field + ".behavior") != "Isolated") {
    file.fail(field + ".behavior", "only \"Isolated\" is supported");
  }
  if (flag_or(file, o, "invert", false, field)) file.fail(field + ".invert", "true is not supported");
  return std::string(file.string(*regex, field + ".pattern.Regex"));
}

// GLM-4: Sequence[Split(pattern, Isolated), ByteLevel(use_regex = false)]; also a lone
// ByteLevel (GPT-2's pattern).
std::string read_pre_tokenizer(const json_document& file, const boost::json::object& root) {
  const boost::json::value* pre = file.member(root, "pre_tokenizer");
  if (pre == nullptr) file.fail("pre_tokenizer", "missing; expected Split + ByteLevel");
  const boost::json::object& o = file.object(*pre, "pre_tokenizer");
  const std::string_view type = type_of(file, o, "pre_tokenizer");
  if (type == "ByteLevel") {
    auto pattern = read_byte_level(file, o, "pre_tokenizer");
    if (!pattern) file.fail("pre_tokenizer.use_regex", "a lone ByteLevel without its regex is not supported");
    return *pattern;
  }
  if (type != "Sequence")
    file.fail("pre_tokenizer.type", "expected Sequence or ByteLevel, got " + std::string(type));
  const boost::json::array& steps = file.array(
      file.required(o, "pretokenizers", "pre_tokenizer.pretokenizers"), "pre_tokenizer.pretokenizers");
  std::optional<std::string> pattern;
  bool has_byte_level = false;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const std::string field = "pre_tokenizer.pretokenizers[" + std::to_string(i) + "]";
    const boost::json::object& step = file.object(steps[i], field);
    const std::string_view step_type = type_of(file, step, field);
    if (step_type == "Split" && !pattern && !has_byte_level) {
      pattern = read_split(file, step, field);
    } else if (step_type == "ByteLevel" && !has_byte_level) {
      has_byte_level = true;
      if (auto implied = read_byte_level(file, step, field)) {
        if (pattern) file.fail(field + ".use_regex", "true after a Split is not supported");
        pattern = std::move(implied);
      }
    } else {
      file.fail(field + ".type",
                "unsupported step " + std::string(step_type) + " (expected Split then ByteLevel)");
    }
  }
  if (!has_byte_level) file.fail("pre_tokenizer", "no ByteLevel step; only byte-level BPE is supported");
  if (!pattern) file.fail("pre_tokenizer", "no Split step");
  return *pattern;
}

// "a b" (older files) or ["a", "b"] (tokenizers >= 0.20).
std::pair<std::string, std::string> read_merge(const json_document& file, const boost::json::value& v,
                                               const std::string& field) {
  if (v.is_string()) {
    const std::string_view line = v.get_string();
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
      file.fail(field, "expected \"<left> <right>\", got \"" + std::string(line) + "\"");
    }
    return {std::string(line.substr(0, space)), std::string(line.substr(space + 1))};
  }
  const boost::json::array& pair = file.array(v, field);
  if (pair.size() != 2) file.fail(field, "expected a pair [left, right]");
  return {std::string(file.string(pair[0], field + "[0]")), std::string(file.string(pair[1], field + "[1]"))};
}

bpe_model read_model(const json_document& file, const boost::json::object& root) {
  const boost::json::object& m = file.object(file.required(root, "model", "model"), "model");
  if (const boost::json::value* type = file.member(m, "type");
      type && file.string(*type, "model.type") != "BPE") {
    file.fail("model.type", "expected BPE, got " + std::string(type->get_string()));
  }
  const boost::json::object& vocab = file.object(file.required(m, "vocab", "model.vocab"), "model.vocab");
  bpe_model model;
  std::unordered_map<std::string_view, token_id> ids;  // keys point into the JSON document
  ids.reserve(vocab.size());
  for (const auto& [token, value] : vocab) {
    const std::string field = "model.vocab[\"" + std::string(token) + "\"]";
    const std::int64_t id = file.integer(value, field);
    if (id < 0 || id > INT32_MAX) file.fail(field, "id out of range");
    std::optional<std::string> bytes = byte_level::to_bytes(token);
    const bool is_mergeable = bytes.has_value();
    model.add_token(static_cast<token_id>(id), is_mergeable ? std::move(*bytes) : std::string(token),
                    is_mergeable);
    ids.emplace(std::string_view(token), static_cast<token_id>(id));
  }
  const boost::json::array& merges = file.array(file.required(m, "merges", "model.merges"), "model.merges");
  const auto id_of = [&](const std::string& token, const std::string& field) {
    const auto it = ids.find(token);
    if (it == ids.end()) file.fail(field, "\"" + token + "\" is not in model.vocab");
    return it->second;
  };
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const std::string field = "model.merges[" + std::to_string(i) + "]";
    const auto [left, right] = read_merge(file, merges[i], field);
    const token_id left_id = id_of(left, field);
    const token_id right_id = id_of(right, field);
    model.add_merge(left_id, right_id, static_cast<std::uint32_t>(i),
                    id_of(left + right, field + " (merged)"));
  }
  model.set_ignore_merges(flag_or(file, m, "ignore_merges", false, "model"));
  model.finalize();
  return model;
}

}  // namespace

tokenizer tokenizer::load_tokenizer_json(const std::filesystem::path& path) {
  const json_document file(path, throw_tokenizer_error);
  const boost::json::object& root = file.object(file.root(), "(top level)");
  if (const boost::json::value* normalizer = file.member(root, "normalizer")) {
    file.fail("normalizer",
              "unsupported " +
                  std::string(type_of(file, file.object(*normalizer, "normalizer"), "normalizer")) +
                  " (GLM-4 has none)");
  }
  tokenizer_parts parts;
  parts.source = file.name();
  parts.split_pattern = read_pre_tokenizer(file, root);
  parts.model = read_model(file, root);
  parts.decode_added_as_byte_level = true;
  if (const boost::json::value* added = file.member(root, "added_tokens")) {
    const boost::json::array& tokens = file.array(*added, "added_tokens");
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string field = "added_tokens[" + std::to_string(i) + "]";
      const boost::json::object& o = file.object(tokens[i], field);
      const std::int64_t id = file.integer(file.required(o, "id", field + ".id"), field + ".id");
      if (id < 0 || id > INT32_MAX) file.fail(field + ".id", "id out of range");
      parts.added_tokens.push_back(read_added_token(file, tokens[i], static_cast<token_id>(id), field));
    }
  }
  const std::filesystem::path config = path.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config)) parts.chat_template = read_tokenizer_config(config).chat_template;
  return tokenizer(std::move(parts));
}

}  // namespace glm4::model
