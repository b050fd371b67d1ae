// glm4-actor: subcommand dispatch. Usage errors exit 2 with one line and the usage; runtime errors exit 1.
#include <iostream>
#include <map>

#include "tools/cli/cli_support.hpp"

int main(int argc, char** argv) {
  using namespace glm4::cli;
  CLI::App app{"glm4-actor: serve and run GLM-4 models (chatglm, glm and glm4 checkpoint layouts)", "glm4-actor"};
  app.require_subcommand(1);
  app.fallthrough(false);

  std::map<const CLI::App*, command_runner> runners;
  auto add = [&](const char* name, const char* description, auto add_command) {
    CLI::App* command = app.add_subcommand(name, description);
    runners[command] = add_command(*command);
  };
  add("make-model", "Write a random-weight GLM-4 checkpoint (any preset, layout and dtype)", add_make_model_command);
  add("generate", "Generate text for one prompt, streamed to stdout", add_generate_command);
  add("doctor", "Check GPUs, driver, compiled CUDA architectures and (with --model) the memory plan", add_doctor_command);
  add("serve", "Serve the OpenAI-compatible HTTP API (chat and text completions, SSE streaming)", add_serve_command);
  add("bench", "Benchmark serving throughput and latency in-process", add_bench_command);

  // CLI11 reports an unknown subcommand only as "A subcommand is required"; name it instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::string known;
    bool is_known = false;
    for (const CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
      known += (known.empty() ? "" : ", ") + command->get_name();
      is_known = is_known || command->get_name() == argv[1];
    }
    if (!is_known)
      return report_usage_error(app, std::string("unknown subcommand '") + argv[1] + "' (one of: " + known + ")");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    const auto parsed = app.get_subcommands();
    const CLI::App& context = parsed.empty() ? app : *parsed.front();
    return report_usage_error(context, error.what());
  }

  const CLI::App* chosen = app.get_subcommands().front();
  try {
    return runners.at(chosen)();
  } catch (const usage_error& error) {
    return report_usage_error(error.command(), error.what());
  } catch (const std::exception& error) {
    std::cerr << "glm4-actor " << chosen->get_name() << ": error: " << error.what() << "\n";
    return 1;
  }
}
