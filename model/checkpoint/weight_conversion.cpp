#include "model/checkpoint/weight_conversion.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "model/checkpoint/weight_layout.hpp"

namespace glm4::model {
namespace {

float element_as_f32(const kernels::tensor& t, std::int64_t i) {
  switch (t.type) {
    case kernels::dtype::f32: return t.as<float>()[i];
    case kernels::dtype::bf16: return kernels::bf16_to_f32(t.as<std::uint16_t>()[i]);
    case kernels::dtype::f16: return kernels::f16_to_f32(t.as<std::uint16_t>()[i]);
    case kernels::dtype::i32: break;
  }
  throw std::invalid_argument("convert_weights: " + kernels::describe(t) + " is not a float tensor");
}

kernels::tensor converted(const kernels::tensor& source, kernels::dtype type) {
  kernels::tensor out;
  out.type = type;
  out.shape = source.shape;
  std::shared_ptr<std::byte[]> memory(new std::byte[out.nbytes()]);
  out.data = memory.get();
  out.owner = memory;
  const std::int64_t n = source.numel();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float value = element_as_f32(source, i);
    if (type == kernels::dtype::f32)
      out.as<float>()[i] = value;
    else if (type == kernels::dtype::bf16)
      out.as<std::uint16_t>()[i] = kernels::f32_to_bf16(value);
    else
      out.as<std::uint16_t>()[i] = kernels::f32_to_f16(value);
  }
  return out;
}

}  // namespace

model_weights convert_weights(const model_config& config, const model_weights& weights, kernels::dtype type) {
  if (type == kernels::dtype::i32) throw std::invalid_argument("convert_weights: weights must be a float type");
  model_weights result = weights;
  std::map<const void*, kernels::tensor> done;  // by source address: a tied head is converted once
  for (const canonical_tensor& canonical : canonical_tensors(config)) {
    kernels::tensor& slot = weight_slot(result, canonical.id);
    if (slot.empty() || slot.type == type) continue;
    auto [found, is_new] = done.try_emplace(slot.data);
    if (is_new) found->second = converted(slot, type);
    slot = found->second;
  }
  if (config.tie_word_embeddings) result.lm_head = result.tok_embeddings;
  return result;
}

}  // namespace glm4::model
