// Shared pieces of the subcommands: registration, usage errors and parsing of enum-like flags.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>

namespace glm4::cli {

/// A bad argument that CLI11 could not catch (e.g. a value outside a set checked after parsing):
/// reported as one line plus the subcommand's usage, exit code 2.
class usage_error : public std::runtime_error {
 public:
  usage_error(const CLI::App& command, const std::string& message)
      : std::runtime_error(message), command_(&command) {}
  const CLI::App& command() const { return *command_; }

 private:
  const CLI::App* command_;
};

/// Each subcommand registers its options and the function run after a successful parse.
using command_runner = std::function<int()>;
command_runner add_make_model_command(CLI::App& app);
command_runner add_generate_command(CLI::App& app);
command_runner add_doctor_command(CLI::App& app);
command_runner add_bench_command(CLI::App& app);
command_runner add_serve_command(CLI::App& app);

/// Prints "glm4-actor: error: <message>" and the usage of `command`; returns the exit code 2.
int report_usage_error(const CLI::App& command, const std::string& message);

}  // namespace glm4::cli
