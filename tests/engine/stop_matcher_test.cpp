// Stop strings over streamed deltas: hold back, cut, release.
#include <catch2/catch.hpp>

#include "engine/stop_matcher.hpp"

namespace glm4::engine {

TEST_CASE("stop_matcher passes text through without stop strings", "[stop_matcher]") {
  stop_matcher m;
  CHECK(m.push("Hello").text == "Hello");
  CHECK(m.push(" world").text == " world");
  CHECK(m.flush().empty());
}

TEST_CASE("stop_matcher holds back a possible start and cuts the stop string", "[stop_matcher]") {
  stop_matcher m({"STOP"});
  auto r = m.push("abc ST");
  CHECK(r.text == "abc ");
  CHECK_FALSE(r.stopped);
  r = m.push("O");
  CHECK(r.text.empty());
  r = m.push("Pxyz");
  CHECK(r.stopped);
  CHECK(r.text.empty());
  CHECK(m.matched() == "STOP");
  CHECK(m.push("more").text.empty());
  CHECK(m.flush().empty());
}

TEST_CASE("stop_matcher releases held text that turns out not to stop", "[stop_matcher]") {
  stop_matcher m({"STOP"});
  CHECK(m.push("a S").text == "a ");
  CHECK(m.push("Tx").text == "STx");
  CHECK(m.push("ST").text.empty());
  CHECK(m.flush() == "ST");
}

TEST_CASE("stop_matcher finds the earliest of several stop strings in one delta", "[stop_matcher]") {
  stop_matcher m({"world", "lo"});
  const auto r = m.push("hello world");
  CHECK(r.stopped);
  CHECK(r.text == "hel");
  CHECK(m.matched() == "lo");
}

TEST_CASE("stop_matcher matches a stop string spread over many deltas", "[stop_matcher]") {
  stop_matcher m({"</end>", "\n\n"});
  std::string shown;
  bool stopped = false;
  for (std::string piece : {"x", "<", "/e", "n", "d", "!", "\n", "y", "<", "/", "end", ">", "z"}) {
    const auto r = m.push(piece);
    shown += r.text;
    if (r.stopped) {
      stopped = true;
      break;
    }
  }
  CHECK(stopped);
  CHECK(shown == "x</end!\ny");
}

}  // namespace glm4::engine
