// Shared by the tokenizer tests: the fixture tokenizers, JSONL readers and a scratch folder.
#pragma once

#include <boost/json.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "model/tokenizer/base64.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace glm4::model::testing {

inline std::filesystem::path fixture_dir() { return std::filesystem::path(GLM4_TEST_DATA_DIR) / "tokenizer"; }

/// Loaded once per test run.
inline const tokenizer& json_tokenizer() {
  static const tokenizer t = tokenizer::load_tokenizer_json(fixture_dir() / "tokenizer.json");
  return t;
}

inline const tokenizer& tiktoken_tokenizer() {
  static const tokenizer t =
      tokenizer::load_tiktoken(fixture_dir() / "tokenizer.model", fixture_dir() / "tokenizer_config.json");
  return t;
}

struct jsonl_line {
  std::size_t number;  // 1-based line in the file
  boost::json::object value;
};

inline std::vector<jsonl_line> read_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::vector<jsonl_line> lines;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    lines.push_back({number, boost::json::parse(line).as_object()});
  }
  return lines;
}

inline std::vector<token_id> ids_of(const boost::json::value& v) {
  std::vector<token_id> ids;
  for (const boost::json::value& id : v.as_array()) ids.push_back(static_cast<token_id>(id.as_int64()));
  return ids;
}

/// A corpus case: the input bytes ("text", or "bytes_b64" for ill-formed UTF-8) and the ids.
struct corpus_case {
  std::size_t line;
  std::string input;
  bool is_valid_text;
  std::vector<token_id> ids;
};

inline std::vector<corpus_case> corpus_cases() {
  std::vector<corpus_case> cases;
  for (const jsonl_line& line : read_jsonl(fixture_dir() / "corpus_cases.jsonl")) {
    corpus_case c{line.number, {}, true, ids_of(line.value.at("ids"))};
    if (const boost::json::value* text = line.value.if_contains("text")) {
      c.input = std::string(text->as_string());
    } else {
      c.input = decode_base64(line.value.at("bytes_b64").as_string()).value();
      c.is_valid_text = false;
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

inline std::string to_string(std::span<const token_id> ids) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < ids.size(); ++i) out << (i ? ", " : "") << ids[i];
  out << ']';
  return out.str();
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline void write_file(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

/// A fresh folder under the build tree, removed when the test ends.
class scratch_dir {
 public:
  scratch_dir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::path(GLM4_BINARY_DIR) / "test_scratch" /
            ("tokenizer_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace glm4::model::testing
