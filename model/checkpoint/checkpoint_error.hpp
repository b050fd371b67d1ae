// The one exception type of checkpoint reading and writing.
#pragma once

#include <stdexcept>
#include <string>

namespace glm4::model {

/// A checkpoint that cannot be read (or written): the message names the file, and the key or
/// tensor where it went wrong.
struct checkpoint_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace glm4::model
