// Runs a command line through the shell and captures its exit code, stdout and stderr (for CLI tests).
#pragma once

#include <string>
#include <vector>

namespace glm4::test {

struct command_result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// args are quoted for the shell; the process inherits the environment.
command_result run_command(const std::vector<std::string>& args);

/// Path of the built glm4-actor binary.
std::string glm4_actor_path();

}  // namespace glm4::test
