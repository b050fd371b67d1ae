#include "tests/tools/run_command.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace glm4::test {
namespace {

std::string shell_quote(const std::string& arg) {
  std::string quoted = "'";
  for (char c : arg) {
    if (c == '\'') quoted += "'\\''";
    else quoted += c;
  }
  return quoted + "'";
}

std::string slurp(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

command_result run_command(const std::vector<std::string>& args) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("glm4_cmd_" + std::to_string(std::random_device{}()) + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string line;
  for (const auto& arg : args) line += shell_quote(arg) + " ";
  line += "</dev/null >" + shell_quote((dir / "out").string()) + " 2>" + shell_quote((dir / "err").string());
  const int status = std::system(line.c_str());
  command_result result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = slurp(dir / "out");
  result.err = slurp(dir / "err");
  std::filesystem::remove_all(dir);
  return result;
}

std::string glm4_actor_path() { return std::string(GLM4_BINARY_DIR) + "/glm4-actor"; }

}  // namespace glm4::test
