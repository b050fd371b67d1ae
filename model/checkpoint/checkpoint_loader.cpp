#include "model/checkpoint/checkpoint_loader.hpp"

#include <map>
#include <set>
#include <unordered_set>

#include "model/checkpoint/checkpoint_files.hpp"
#include "model/checkpoint/config_parser.hpp"
#include "model/checkpoint/progress.hpp"
#include "model/checkpoint/weight_layout.hpp"

namespace glm4::model {

namespace {

constexpr std::size_t max_unused_reported = 8;

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

std::string canonical_names(const stored_tensor& stored) {
  std::string text;
  for (const auto& part : stored.parts) text += (text.empty() ? "" : ", ") + canonical_name(part.id);
  return text;
}

void assign_weights(const model_config& config, const checkpoint_files& files, const std::filesystem::path& dir,
                    model_weights& weights, std::unordered_set<std::string>& used) {
  weights.layers.resize(static_cast<std::size_t>(config.num_layers));
  for (const auto& stored : stored_tensors(config)) {
    if (!files.file_of.contains(stored.name))
      throw checkpoint_error(dir.string() + ": missing tensor \"" + stored.name + "\" (canonical " + canonical_names(stored) + ") of the " +
                             std::string(layout_name(config.layout)) + " layout");
    const auto& file = files.file_holding(stored.name);
    const auto& view = file.at(stored.name);
    if (view.shape != stored.shape)
      throw checkpoint_error(file.path().string() + ": tensor \"" + stored.name + "\" (canonical " + canonical_names(stored) +
                             "): expected shape " + shape_text(stored.shape) + ", got " + shape_text(view.shape));
    std::int64_t row = 0;
    for (const auto& part : stored.parts) {
      weight_slot(weights, part.id) = stored.parts.size() == 1 ? view : kernels::view_rows(view, row, part.shape[0]);
      row += part.shape[0];
    }
    used.insert(stored.name);
  }
  if (config.tie_word_embeddings) weights.lm_head = weights.tok_embeddings;
}

void report_unused(const model_config& config, const checkpoint_files& files, const std::unordered_set<std::string>& used) {
  std::set<std::pair<std::string, std::string>> unused;  // (file, tensor), sorted for a stable report
  for (const auto& [name, index] : files.file_of)
    if (!used.contains(name) && !is_ignored_tensor(config, name)) unused.emplace(files.files[index].path().string(), name);
  std::size_t count = 0;
  for (const auto& [file, name] : unused) {
    if (++count > max_unused_reported) break;
    progress_line("warning: " + file + ": tensor \"" + name + "\" is not used by the " + std::string(layout_name(config.layout)) +
                  " layout; ignored");
  }
  if (unused.size() > max_unused_reported)
    progress_line("warning: ... and " + std::to_string(unused.size() - max_unused_reported) + " more unused tensors");
}

}  // namespace

std::string weights_summary(const model_config& config, const model_weights& weights) {
  std::map<const void*, const kernels::tensor*> distinct;  // by start address: fused views and a tied head count once
  std::size_t num_tensors = 0;
  for_each_weight(config, weights, [&](const weight_id&, const kernels::tensor& t) {
    ++num_tensors;
    if (!t.empty()) distinct.emplace(t.data, &t);
  });
  std::map<kernels::dtype, std::uint64_t> by_dtype;
  std::uint64_t total = 0;
  for (const auto& [address, t] : distinct) {
    by_dtype[t->type] += t->nbytes();
    total += t->nbytes();
  }
  std::string text = "weights: " + std::to_string(num_tensors) + " tensors, " + format_bytes(total) + " (";
  bool first = true;
  for (const auto& [type, bytes] : by_dtype) {
    text += (first ? "" : ", ") + std::string(kernels::dtype_name(type)) + " " + format_bytes(bytes);
    first = false;
  }
  return text + ")";
}

checkpoint load_checkpoint(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) throw checkpoint_error(dir.string() + ": not a directory");
  checkpoint result;
  result.dir = dir;
  result.config = load_model_config(dir);
  result.generation = load_generation_config(dir);
  const checkpoint_files files = open_checkpoint_files(dir);
  std::unordered_set<std::string> used;
  assign_weights(result.config, files, dir, result.weights, used);
  report_unused(result.config, files, used);
  if (files.total_bytes() > large_checkpoint_bytes) {
    progress_line("checkpoint: " + std::string(layout_name(result.config.layout)) + " layout, " + std::to_string(result.config.num_layers) +
                  " layers, " + weights_summary(result.config, result.weights));
    progress_line("checkpoint: " + std::to_string(files.files.size()) + " mapped file(s), " + format_bytes(files.total_bytes()) +
                  " of address space (pages load on first touch)");
  }
  return result;
}

}  // namespace glm4::model
