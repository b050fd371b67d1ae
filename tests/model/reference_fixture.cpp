#include "tests/model/reference_fixture.hpp"

#include <stdexcept>

#include "model/checkpoint/checkpoint_error.hpp"
#include "model/json/json_file.hpp"

namespace glm4::test {
namespace {

std::vector<std::int32_t> int_list(const boost::json::value& value) {
  std::vector<std::int32_t> ids;
  for (const auto& id : value.as_array()) ids.push_back(static_cast<std::int32_t>(id.to_number<std::int64_t>()));
  return ids;
}

}  // namespace

std::filesystem::path test_data_dir() { return GLM4_TEST_DATA_DIR; }

reference_set load_reference(const std::string& name) {
  const std::filesystem::path base = test_data_dir() / "reference" / name;
  const boost::json::value json = model::parse_json_file(base.string() + ".json", model::throw_checkpoint_error);
  const boost::json::object& root = json.as_object();
  reference_set set{name, {}, root.at("logit_scale").to_number<double>(),
                    root.at("weights_dtype").as_string() == "bfloat16", root.at("compute_dtype").as_string() == "float32", {},
                    model::safetensors_file::open(base.string() + ".safetensors")};
  for (const auto& dir : root.at("model_dirs").as_array()) set.model_dirs.emplace_back(dir.as_string());
  const auto& prompts = root.at("prompts").as_array();
  for (std::size_t k = 0; k < prompts.size(); ++k) {
    const auto& prompt = prompts[k].as_object();
    set.prompts.push_back({std::string(prompt.at("name").as_string()), int_list(prompt.at("ids")),
                           int_list(prompt.at("greedy_ids")), set.tensors.at("prefill_logits_" + std::to_string(k)),
                           set.tensors.at("decode_logits_" + std::to_string(k))});
  }
  return set;
}

reference_set reference_for(const std::string& model_dir) {
  for (const auto& entry : std::filesystem::directory_iterator(test_data_dir() / "reference")) {
    if (entry.path().extension() != ".json") continue;
    reference_set set = load_reference(entry.path().stem().string());
    for (const auto& dir : set.model_dirs)
      if (dir == model_dir) return set;
  }
  throw std::runtime_error("no reference lists model dir " + model_dir);
}

}  // namespace glm4::test
