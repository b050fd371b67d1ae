#include "tools/cli/cli_support.hpp"

#include <iostream>

namespace glm4::cli {

int report_usage_error(const CLI::App& command, const std::string& message) {
  std::cerr << "glm4-actor: error: " << message << "\n\n" << command.help();
  return 2;
}

}  // namespace glm4::cli
