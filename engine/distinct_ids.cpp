#include "engine/distinct_ids.hpp"

#include <algorithm>
#include <functional>

namespace glm4::engine {

void sort_distinct(std::vector<token_id>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

std::span<const token_id> sorted_distinct(std::span<const token_id> ids, std::vector<token_id>& storage) {
  if (std::adjacent_find(ids.begin(), ids.end(), std::greater_equal<>()) == ids.end()) return ids;
  storage.assign(ids.begin(), ids.end());
  sort_distinct(storage);
  return storage;
}

}  // namespace glm4::engine
