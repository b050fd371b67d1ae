#include "tests/model/random_model.hpp"

#include <memory>
#include <span>
#include <stdexcept>

#include "model/checkpoint/make_model.hpp"
#include "model/checkpoint/weight_generator.hpp"
#include "model/checkpoint/weight_layout.hpp"

namespace glm4::test {

random_model make_random_model(model::checkpoint_layout layout, std::uint64_t seed) {
  random_model made;
  const auto config = model::preset_config("tiny", layout, kernels::dtype::f32);
  if (!config) throw std::logic_error("make_random_model: no tiny preset");
  made.config = *config;
  made.weights.layers.resize(static_cast<std::size_t>(made.config.num_layers));
  for (const model::canonical_tensor& canonical : model::canonical_tensors(made.config)) {
    kernels::tensor t;
    t.shape = canonical.shape;
    auto memory = std::make_shared<std::vector<float>>(static_cast<std::size_t>(t.numel()));
    t.data = memory->data();
    t.owner = memory;
    model::generate_weights(seed, canonical, kernels::dtype::f32, 0, std::as_writable_bytes(std::span(*memory)));
    model::weight_slot(made.weights, canonical.id) = t;
  }
  if (made.config.tie_word_embeddings) made.weights.lm_head = made.weights.tok_embeddings;
  return made;
}

}  // namespace glm4::test
