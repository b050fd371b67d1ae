// glm4-actor make-model: random-weight checkpoints that load exactly like downloaded ones.
#include <iostream>

#include "model/checkpoint/make_model.hpp"
#include "tools/cli/cli_support.hpp"

namespace glm4::cli {

command_runner add_make_model_command(CLI::App& command) {
  struct flags {
    std::string preset = "tiny";
    std::string layout = "glm";
    std::string dtype = "bf16";
    std::uint64_t seed = 0;
    std::string out_dir;
  };
  auto options = std::make_shared<flags>();
  command.add_option("--preset", options->preset, "Model shape")
      ->check(CLI::IsMember(model::preset_names()))
      ->capture_default_str();
  command.add_option("--layout", options->layout, "Checkpoint layout: glm (GlmForCausalLM), glm4 (Glm4ForCausalLM), chatglm (original THUDM)")
      ->check(CLI::IsMember({"glm", "glm4", "chatglm"}))
      ->capture_default_str();
  command.add_option("--dtype", options->dtype, "Weight type")
      ->check(CLI::IsMember({"bf16", "f16", "f32"}))
      ->capture_default_str();
  command.add_option("--seed", options->seed, "Seed; the same seed gives the same weights in every layout")
      ->capture_default_str();
  command.add_option("--out", options->out_dir, "Output directory (created)")->required();

  return [options] {
    model::make_model_options make;
    make.preset = options->preset;
    make.layout = *model::parse_layout(options->layout);
    make.dtype = options->dtype == "f32" ? kernels::dtype::f32
                 : options->dtype == "f16" ? kernels::dtype::f16
                                           : kernels::dtype::bf16;
    make.seed = options->seed;
    make.out_dir = options->out_dir;
    model::make_model(make);
    std::cerr << "make-model: wrote " << options->preset << " (" << options->layout << ", " << options->dtype
              << ", seed " << options->seed << ") to " << options->out_dir << "\n";
    return 0;
  };
}

}  // namespace glm4::cli
