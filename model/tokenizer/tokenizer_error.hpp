// The one exception type of the tokenizer: bad files, bad patterns, bad chat messages.
#pragma once

#include <stdexcept>

namespace glm4::model {

/// what() names the file and the line or JSON field where loading failed.
class tokenizer_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace glm4::model
