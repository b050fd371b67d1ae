// [model] dtype: the checkpoint's weights stored as another float type (BF16, F16 or F32), in new
// host memory. Compute is F32 either way; the dtype decides memory and bytes read per token.
#pragma once

#include "kernels/dtype.hpp"
#include "model/model_config.hpp"
#include "model/model_weights.hpp"

namespace glm4::model {

/// Every weight the config calls for, in `type` (one rounding, to nearest even; F16 overflow
/// saturates to infinity as torch's .half() does). Tensors already in `type` stay views of the
/// checkpoint; a tied head stays the embedding. Throws std::invalid_argument for a non-float type.
model_weights convert_weights(const model_config& config, const model_weights& weights, kernels::dtype type);

}  // namespace glm4::model
