// Bearer extraction, key comparison and key files.
#include <catch2/catch.hpp>

#include <fstream>

#include "http/auth.hpp"

namespace glm4::http {
namespace {

std::filesystem::path write_file(const std::string& name, const std::string& text) {
  const auto dir = std::filesystem::path(GLM4_BINARY_DIR) / "tests" / "http" / "scratch";
  std::filesystem::create_directories(dir);
  const auto file = dir / name;
  std::ofstream(file) << text;
  return file;
}

TEST_CASE("bearer tokens", "[http][auth]") {
  CHECK(bearer_token("Bearer abc") == "abc");
  CHECK(bearer_token("bearer   abc  ") == "abc");
  CHECK(bearer_token("BEARER\tsk-1") == "sk-1");
  CHECK_FALSE(bearer_token("Basic abc"));
  CHECK_FALSE(bearer_token("Bearer"));
  CHECK_FALSE(bearer_token("Bearer   "));
  CHECK_FALSE(bearer_token("Bearerabc"));
  CHECK_FALSE(bearer_token(""));
}

TEST_CASE("constant-time equality is plain equality", "[http][auth]") {
  CHECK(constant_time_equal("secret", "secret"));
  CHECK_FALSE(constant_time_equal("secret", "secreT"));
  CHECK_FALSE(constant_time_equal("secret", "secret2"));
  CHECK_FALSE(constant_time_equal("secret", "secre"));
  CHECK_FALSE(constant_time_equal("secret", ""));
  CHECK_FALSE(constant_time_equal("", "x"));
  CHECK(constant_time_equal("", ""));
  // A prefix padded with NULs must not pass as the key.
  CHECK_FALSE(constant_time_equal(std::string_view("ab\0", 3), "ab"));
}

TEST_CASE("a key set authorizes requests", "[http][auth]") {
  const api_keys none;
  CHECK(none.empty());
  CHECK(none.authorizes(std::nullopt));

  const api_keys keys({"sk-one", "", "sk-two"});
  CHECK(keys.size() == 2);
  CHECK(keys.accepts("sk-two"));
  CHECK_FALSE(keys.accepts(""));
  CHECK(keys.authorizes(std::string_view("Bearer sk-one")));
  CHECK_FALSE(keys.authorizes(std::string_view("Bearer sk-three")));
  CHECK_FALSE(keys.authorizes(std::string_view("sk-one")));
  CHECK_FALSE(keys.authorizes(std::nullopt));
  CHECK(path_requires_key("/v1/chat/completions"));
  CHECK(path_requires_key("/metrics"));
  CHECK_FALSE(path_requires_key("/health"));
}

TEST_CASE("key files: one key a line, comments and blanks skipped", "[http][auth]") {
  const auto file = write_file("keys.txt", "# team keys\n  sk-alpha  \n\nsk-beta\r\n#sk-gamma\n");
  const api_keys keys = api_keys::load_file(file);
  CHECK(keys.size() == 2);
  CHECK(keys.accepts("sk-alpha"));
  CHECK(keys.accepts("sk-beta"));
  CHECK_FALSE(keys.accepts("sk-gamma"));
  CHECK_FALSE(keys.accepts("#sk-gamma"));

  const auto empty = write_file("empty.txt", "# nothing\n\n");
  CHECK_THROWS_WITH(api_keys::load_file(empty), Catch::Contains("empty.txt") && Catch::Contains("no key"));
  CHECK_THROWS_WITH(api_keys::load_file(empty.parent_path() / "missing.txt"), Catch::Contains("missing.txt"));
}

}  // namespace
}  // namespace glm4::http
