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

/// The json_raise of checkpoint code (model/json/json_file.hpp).
[[noreturn]] inline void throw_checkpoint_error(const std::string& message) { throw checkpoint_error(message); }

}  // namespace glm4::model
