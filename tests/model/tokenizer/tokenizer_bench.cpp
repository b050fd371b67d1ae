// Hidden micro-benchmark: ./tokenizer_tests "[.bench]"
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "tests/model/tokenizer/tokenizer_fixtures.hpp"

using namespace glm4::model;
using namespace glm4::model::testing;

TEST_CASE("encode throughput on the corpus", "[.bench]") {
  std::vector<std::string> texts;
  std::size_t num_bytes = 0;
  for (const corpus_case& c : corpus_cases()) {
    texts.push_back(c.input);
    num_bytes += c.input.size();
  }
  std::string joined;
  for (const std::string& t : texts) joined += t;
  for (const auto& [name, tok] : {std::pair{"tokenizer.json", &json_tokenizer()},
                                  std::pair{"tokenizer.model", &tiktoken_tokenizer()}}) {
    for (const auto& [mode, inputs] :
         {std::pair{"per case", texts}, std::pair{"joined", std::vector{joined}}}) {
      std::size_t num_ids = 0;
      const int num_rounds = 20;
      const auto start = std::chrono::steady_clock::now();
      for (int round = 0; round < num_rounds; ++round) {
        for (const std::string& text : inputs) num_ids += tok->encode(text).size();
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << name << " (" << mode << "): " << (num_bytes * num_rounds / seconds / 1e6) << " MB/s, "
                << (num_ids / seconds / 1e6) << " M ids/s\n";
    }
  }
  // Long pieces with no split point exercise the heap merge: nothing may be quadratic.
  std::string cjk;
  while (cjk.size() < (1u << 20)) cjk += "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c";  // 你好世界
  for (const auto& [name, text] :
       {std::pair{"1 MiB of 'e'", std::string(1 << 20, 'e')},
        std::pair{"1 MiB of spaces", std::string(1 << 20, ' ')},
        std::pair{"1 MiB of '!'", std::string(1 << 20, '!')},
        std::pair{"1 MiB of newlines", std::string(1 << 20, '\n')}, std::pair{"1 MiB of CJK letters", cjk}}) {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t num_ids = json_tokenizer().encode(text).size();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << name << ": " << seconds * 1e3 << " ms (" << num_ids << " ids)\n";
    CHECK(num_ids > 0);
  }
}

// With GLM4_TOKENIZER_BENCH_DIR pointing at a real checkpoint's tokenizer files: load time and
// encode speed of the full vocabulary.
TEST_CASE("load and encode a real tokenizer", "[.bench]") {
  const char* dir = std::getenv("GLM4_TOKENIZER_BENCH_DIR");
  if (dir == nullptr) {
    WARN("GLM4_TOKENIZER_BENCH_DIR is not set");
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const tokenizer tok = tokenizer::load(dir);
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << tok.source() << ": loaded in " << load_seconds * 1e3 << " ms, vocab " << tok.vocab_size()
            << "\n";
  std::string joined;
  for (const corpus_case& c : corpus_cases()) joined += c.input;
  const int num_rounds = 20;
  const auto encode_start = std::chrono::steady_clock::now();
  std::size_t num_ids = 0;
  for (int round = 0; round < num_rounds; ++round) num_ids += tok.encode(joined).size();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - encode_start).count();
  std::cout << "encode: " << (joined.size() * num_rounds / seconds / 1e6) << " MB/s, " << num_ids / num_rounds
            << " ids per round\n";
  CHECK(num_ids > 0);
}
