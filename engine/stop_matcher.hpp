// Stop strings over streamed text: what may be shown now, and whether a stop string appeared.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace glm4::engine {

/// Text that may still turn out to be the start of a stop string is held back, never streamed;
/// once a stop string appears, the text before it is released and the rest (the stop string
/// included) is dropped. With no stop strings every push is passed through.
class stop_matcher {
 public:
  struct result {
    std::string text;      // safe to stream now
    bool stopped = false;  // a stop string appeared; nothing more comes out
  };

  explicit stop_matcher(std::vector<std::string> stops = {});

  result push(std::string_view delta);
  /// The held-back text, when the sequence ends for another reason.
  std::string flush();
  bool stopped() const { return stopped_; }
  /// The stop string that matched (empty until one does).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // unreleased text: a suffix that may begin a stop string
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace glm4::engine
