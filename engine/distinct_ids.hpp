// Token id lists as sets: sorted, each id once. A repetition penalty reads a sequence's prompt
// only as such a set, so the engine keeps it that way per sequence (sequence.hpp) and the
// samplers take it as it is.
#pragma once

#include <span>
#include <vector>

#include "engine/sampling_params.hpp"

namespace glm4::engine {

/// Sorts `ids` and drops repeats, in place.
void sort_distinct(std::vector<token_id>& ids);

/// `ids` as a sorted list of distinct ids: `ids` itself when it already is one (checked in one
/// pass), else a sorted copy made in `storage`.
std::span<const token_id> sorted_distinct(std::span<const token_id> ids, std::vector<token_id>& storage);

}  // namespace glm4::engine
