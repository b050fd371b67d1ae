// Stop-string search over the held-back tail plus each new delta.
#include "engine/stop_matcher.hpp"

#include <algorithm>

namespace glm4::engine {

stop_matcher::stop_matcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

stop_matcher::result stop_matcher::push(std::string_view delta) {
  result out;
  if (stopped_) return out;
  pending_.append(delta);
  // The earliest stop string wins: it is what a reader of the full text sees first.
  std::size_t first = std::string::npos;
  for (const std::string& stop : stops_) {
    const std::size_t at = pending_.find(stop);
    if (at < first) {
      first = at;
      matched_ = stop;
    }
  }
  if (first != std::string::npos) {
    out.text = pending_.substr(0, first);
    out.stopped = stopped_ = true;
    pending_.clear();
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string.
  std::size_t held = 0;
  for (const std::string& stop : stops_) {
    const std::size_t longest = std::min(stop.size() - 1, pending_.size());
    for (std::size_t len = longest; len > held; --len)
      if (std::string_view(pending_).substr(pending_.size() - len) == std::string_view(stop).substr(0, len)) {
        held = len;
        break;
      }
  }
  out.text = pending_.substr(0, pending_.size() - held);
  pending_.erase(0, pending_.size() - held);
  return out;
}

std::string stop_matcher::flush() {
  std::string rest = stopped_ ? std::string() : std::move(pending_);
  pending_.clear();
  return rest;
}

}  // namespace glm4::engine
