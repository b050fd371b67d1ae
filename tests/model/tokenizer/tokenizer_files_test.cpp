#include <catch2/catch.hpp>

#include "tests/model/tokenizer/tokenizer_fixtures.hpp"

using namespace glm4::model;
using namespace glm4::model::testing;

namespace {

// A small valid tokenizer.json; each test breaks one part of it.
boost::json::object minimal_json() {
  return boost::json::parse(R"({
    "added_tokens": [{"id": 3, "content": "<|user|>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\s+|\\S+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
  })")
      .as_object();
}

std::filesystem::path write_json(const scratch_dir& dir, const boost::json::object& o) {
  const auto path = dir.path() / "tokenizer.json";
  write_file(path, boost::json::serialize(o));
  return path;
}

std::string load_error(const std::filesystem::path& dir) {
  try {
    tokenizer::load(dir);
  } catch (const tokenizer_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("a minimal tokenizer.json loads, string merges included", "[tokenizer][files]") {
  scratch_dir dir;
  write_json(dir, minimal_json());
  const tokenizer tok = tokenizer::load(dir.path());
  // The space has no token, so it is dropped.
  CHECK(tok.encode("ab ba<|user|>") == std::vector<token_id>{2, 1, 0, 3});
  CHECK(tok.vocab_size() == 4);
}

TEST_CASE("tokenizer.json errors name the file and the field", "[tokenizer][files]") {
  scratch_dir dir;
  const std::string file = (dir.path() / "tokenizer.json").string();

  write_file(dir.path() / "tokenizer.json", "{\n  \"model\": {\n    \"vocab\": [1,,]\n");
  CHECK_THAT(load_error(dir.path()), Catch::StartsWith(file + ":3:") && Catch::Contains("invalid JSON"));

  auto o = minimal_json();
  o["model"].as_object()["vocab"] = boost::json::array{};
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()), Catch::Contains(file + ": model.vocab: expected an object"));

  o = minimal_json();
  o["model"].as_object()["merges"] = boost::json::parse(R"(["a c"])");
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()),
             Catch::Contains("model.merges[0]") && Catch::Contains("\"c\" is not in model.vocab"));

  o = minimal_json();
  o["model"].as_object()["merges"] = boost::json::parse(R"([["b", "a"]])");
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()),
             Catch::Contains("model.merges[0] (merged)") && Catch::Contains("\"ba\""));

  o = minimal_json();
  o["model"].as_object()["merges"] = boost::json::parse(R"(["ab"])");
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()), Catch::Contains("model.merges[0]: expected \"<left> <right>\""));

  o = minimal_json();
  o["model"].as_object()["type"] = "WordPiece";
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()), Catch::Contains("model.type: expected BPE"));

  o = minimal_json();
  o["normalizer"] = boost::json::parse(R"({"type": "NFC"})");
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()), Catch::Contains("normalizer: unsupported NFC"));

  o = minimal_json();
  o["pre_tokenizer"].as_object()["pretokenizers"].as_array()[0].as_object()["pattern"] =
      boost::json::parse(R"({"Regex": "(oops"})");
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()), Catch::Contains("split pattern (oops"));

  o = minimal_json();
  o["pre_tokenizer"].as_object()["pretokenizers"].as_array()[1].as_object()["add_prefix_space"] = true;
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()), Catch::Contains("pre_tokenizer.pretokenizers[1].add_prefix_space"));

  o = minimal_json();
  o["added_tokens"].as_array()[0].as_object().erase("content");
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()), Catch::Contains("added_tokens[0].content: missing"));

  o = minimal_json();
  o["added_tokens"].as_array()[0].as_object()["id"] = "three";
  write_json(dir, o);
  CHECK_THAT(load_error(dir.path()), Catch::Contains("added_tokens[0].id: expected an integer"));
}

TEST_CASE("tokenizer.model errors name the file and the line", "[tokenizer][files]") {
  scratch_dir dir;
  const std::string file = (dir.path() / "tokenizer.model").string();
  const auto check = [&](std::string_view text, const std::string& expected) {
    write_file(dir.path() / "tokenizer.model", text);
    CHECK_THAT(load_error(dir.path()), Catch::StartsWith(file + expected));
  };
  check("YQ== 0\nYg==\n", ":2: expected \"<base64 token> <rank>\"");
  check("YQ== 0\n!!!! 1\n", ":2: invalid base64 \"!!!!\"");
  check("YQ== 0\nYg== x1\n", ":2: invalid rank \"x1\"");
  check("YQ== 0\nYg== 0\n", ":2: rank 0 appears twice");
  check("YQ== 0\nYQ== 1\n", ":2: token \"YQ==\" appears twice");
  check("\n\n", ": no tokens");
}

TEST_CASE("a tokenizer.model with blank lines and CRLF loads", "[tokenizer][files]") {
  scratch_dir dir;
  write_file(dir.path() / "tokenizer.model", "YQ== 0\r\nYg== 1\r\n\r\nYWI= 2\r\n");
  const tokenizer tok = tokenizer::load(dir.path());
  CHECK(tok.encode("ab") == std::vector<token_id>{2});
  CHECK(tok.encode("ba") == std::vector<token_id>{1, 0});
  CHECK(tok.token_to_id("<|endoftext|>") == 3);
}

TEST_CASE("a folder without tokenizer files is an error", "[tokenizer][files]") {
  scratch_dir dir;
  CHECK_THAT(load_error(dir.path()), Catch::Contains("neither tokenizer.json nor tokenizer.model"));
  CHECK_THROWS_WITH(tokenizer::load_tokenizer_json(dir.path() / "missing.json"),
                    Catch::Contains("cannot open"));
}

TEST_CASE("tokenizer_config.json errors name the field", "[tokenizer][files]") {
  scratch_dir dir;
  std::filesystem::copy_file(fixture_dir() / "tokenizer.model", dir.path() / "tokenizer.model");
  write_file(dir.path() / "tokenizer_config.json",
             R"({"added_tokens_decoder": {"x12": {"content": "<a>"}}})");
  CHECK_THAT(load_error(dir.path()), Catch::Contains("added_tokens_decoder.x12: the key is not a token id"));
  write_file(dir.path() / "tokenizer_config.json",
             R"({"added_tokens_decoder": {"1500": {"content": "<a>", "special": 1}}})");
  CHECK_THAT(load_error(dir.path()),
             Catch::Contains("added_tokens_decoder.1500.special: expected true or false"));
}
