// tokenizer::load_tiktoken: glm-4-9b-chat's tokenizer.model, one "base64(token bytes) rank"
// per line, read as tokenization_chatglm.py (tiktoken) does.
#include <fstream>
#include <unordered_set>

#include "model/tokenizer/base64.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/tokenizer_config.hpp"

namespace glm4::model {
namespace {

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

tokenizer tokenizer::load_tiktoken(const std::filesystem::path& path,
                                   const std::optional<std::filesystem::path>& config) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw tokenizer_error(name + ": cannot open the file");
  const auto fail = [&](std::size_t line_number, const std::string& what) {
    throw tokenizer_error(name + ":" + std::to_string(line_number) + ": " + what);
  };

  tokenizer_parts parts;
  parts.source = name;
  std::vector<std::string> by_rank;  // token bytes, index = rank
  std::unordered_set<std::string> seen;
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const std::string_view text = trim(line);
    if (text.empty()) continue;
    const std::size_t space = text.find_first_of(" \t");
    if (space == std::string_view::npos) fail(line_number, "expected \"<base64 token> <rank>\"");
    const std::string_view encoded = text.substr(0, space);
    const std::string_view rank_text = trim(text.substr(space));
    std::optional<std::string> bytes = decode_base64(encoded);
    if (!bytes) fail(line_number, "invalid base64 \"" + std::string(encoded) + "\"");
    std::uint64_t rank = 0;
    for (char c : rank_text) {
      if (c < '0' || c > '9' || rank > INT32_MAX)
        fail(line_number, "invalid rank \"" + std::string(rank_text) + "\"");
      rank = rank * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (rank_text.empty() || rank > INT32_MAX)
      fail(line_number, "invalid rank \"" + std::string(rank_text) + "\"");
    if (rank < by_rank.size() && !by_rank[rank].empty())
      fail(line_number, "rank " + std::to_string(rank) + " appears twice");
    if (!seen.insert(*bytes).second)
      fail(line_number, "token \"" + std::string(encoded) + "\" appears twice");
    if (rank >= by_rank.size()) by_rank.resize(rank + 1);
    by_rank[rank] = std::move(*bytes);
  }
  if (by_rank.empty()) throw tokenizer_error(name + ": no tokens");

  for (std::size_t rank = 0; rank < by_rank.size(); ++rank) {
    if (!by_rank[rank].empty()) parts.model.add_token(static_cast<token_id>(rank), by_rank[rank]);
  }
  // tiktoken merges the adjacent parts whose concatenation has the lowest rank; every way
  // of splitting a token into two tokens is therefore a merge with the token's rank.
  for (std::size_t rank = 0; rank < by_rank.size(); ++rank) {
    const std::string_view token = by_rank[rank];
    for (std::size_t cut = 1; cut < token.size(); ++cut) {
      const auto left = parts.model.find(token.substr(0, cut));
      const auto right = parts.model.find(token.substr(cut));
      if (left && right) {
        parts.model.add_merge(*left, *right, static_cast<std::uint32_t>(rank), static_cast<token_id>(rank));
      }
    }
  }
  parts.model.set_ignore_merges(true);
  parts.model.finalize();

  std::optional<tokenizer_config> settings;
  if (config) settings = read_tokenizer_config(*config);
  if (settings && !settings->added_tokens.empty()) {
    parts.added_tokens = settings->added_tokens;
  } else {
    auto id = static_cast<token_id>(by_rank.size());
    for (std::string_view special : glm4_special_tokens) {
      parts.added_tokens.push_back({id++, std::string(special), true, false, false});
    }
  }
  if (settings) parts.chat_template = settings->chat_template;
  return tokenizer(std::move(parts));
}

tokenizer tokenizer::load(const std::filesystem::path& dir) {
  const std::filesystem::path json = dir / "tokenizer.json";
  if (std::filesystem::exists(json)) return load_tokenizer_json(json);
  const std::filesystem::path model = dir / "tokenizer.model";
  if (!std::filesystem::exists(model)) {
    throw tokenizer_error(dir.string() + ": neither tokenizer.json nor tokenizer.model is there");
  }
  const std::filesystem::path config = dir / "tokenizer_config.json";
  return load_tiktoken(model, std::filesystem::exists(config) ? std::optional(config) : std::nullopt);
}

}  // namespace glm4::model
