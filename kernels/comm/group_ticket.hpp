// How the ranks of one tensor-parallel stage find each other wherever they run: one rank makes
// the group's id (backend::make_group_id), the head hands every rank a ticket in an actor
// message, and each rank joins with it (backend::join_group). For NCCL the id is ncclUniqueId's
// bytes; for shared memory it is a key into this process's registry.
#pragma once

#include <cstdint>
#include <vector>

namespace glm4::kernels::comm {

struct group_ticket {
  std::vector<std::uint8_t> id;
  std::int32_t rank = 0;
  std::int32_t size = 0;
  bool operator==(const group_ticket&) const = default;
};

}  // namespace glm4::kernels::comm
