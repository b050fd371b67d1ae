// The one exception type of the tokenizer: bad files, bad patterns, bad chat messages.
#pragma once

#include <stdexcept>
#include <string>

namespace glm4::model {

/// what() names the file and the line or JSON field where loading failed.
class tokenizer_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The json_raise of tokenizer code (model/json/json_file.hpp).
[[noreturn]] inline void throw_tokenizer_error(const std::string& message) { throw tokenizer_error(message); }

}  // namespace glm4::model
