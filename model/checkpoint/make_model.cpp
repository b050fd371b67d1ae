#include "model/checkpoint/make_model.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include <boost/json.hpp>

#include "model/checkpoint/checkpoint_error.hpp"
#include "model/checkpoint/config_writer.hpp"
#include "model/checkpoint/embedded_tokenizer.hpp"
#include "model/json/json_file.hpp"
#include "model/checkpoint/progress.hpp"
#include "model/checkpoint/safetensors_writer.hpp"
#include "model/checkpoint/weight_generator.hpp"
#include "model/checkpoint/weight_layout.hpp"

namespace glm4::model {

namespace {

namespace fs = std::filesystem;

struct preset {
  std::string_view name;
  std::int64_t vocab_size, hidden_size, num_layers, num_heads, num_kv_heads, head_dim, intermediate_size;
  double rope_theta;
  std::int64_t max_position_embeddings;
};

// glm-4-9b has the real glm-4-9b-chat shapes; glm-4-1b is a smaller model of the same family.
constexpr preset presets[] = {
    {"tiny", 1024, 256, 4, 8, 2, 32, 704, 10000.0, 4096},
    {"glm-4-1b", 151552, 1536, 24, 12, 2, 128, 4608, 5.0e6, 131072},
    {"glm-4-9b", 151552, 4096, 40, 32, 2, 128, 13696, 5.0e6, 131072},
};

constexpr std::string_view stop_tokens[] = {"<|endoftext|>", "<|user|>", "<|observation|>"};

std::string_view embedded(std::string_view name) {
  auto bytes = embedded_tokenizer_file(name);
  if (!bytes) throw checkpoint_error("make-model: the embedded tokenizer lacks " + std::string(name) + " (tests/data/tokenizer was incomplete at build time)");
  return *bytes;
}

// The stop ids are whatever the embedded tokenizer gives <|endoftext|>, <|user|>, <|observation|>.
generation_config tokenizer_stop_ids() {
  const auto value = parse_json_text(embedded("tokenizer.json"), "embedded tokenizer.json", throw_checkpoint_error);
  const auto* added = value.is_object() ? value.get_object().if_contains("added_tokens") : nullptr;
  if (!added || !added->is_array()) throw checkpoint_error("make-model: embedded tokenizer.json has no added_tokens");
  generation_config generation;
  for (auto token : stop_tokens) {
    std::optional<std::int32_t> found;
    for (const auto& entry : added->get_array()) {
      const auto* object = entry.if_object();
      const auto* content = object ? object->if_contains("content") : nullptr;
      const auto* id = object ? object->if_contains("id") : nullptr;
      if (content && id && content->is_string() && content->get_string() == token && id->is_int64())
        found = static_cast<std::int32_t>(id->get_int64());
    }
    if (!found) throw checkpoint_error("make-model: embedded tokenizer.json lacks the special token " + std::string(token));
    generation.eos_token_ids.push_back(*found);
  }
  generation.pad_token_id = generation.eos_token_ids.front();
  return generation;
}

void write_text(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw checkpoint_error(path.string() + ": cannot write");
}

// Leftovers of an earlier run would make the loader read stale shards; config.json goes too,
// so an interrupted run leaves no directory that looks finished.
void remove_old_weights(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    const bool shard = name.starts_with("model-") && name.ends_with(".safetensors") && name.find("-of-") != std::string::npos;
    if (shard || name == "model.safetensors" || name == "model.safetensors.index.json" || name == "config.json") fs::remove(entry.path());
  }
}

struct shard {
  std::vector<const stored_tensor*> tensors;
  std::uint64_t bytes = 0;
};

std::uint64_t stored_bytes(const stored_tensor& stored, kernels::dtype type) {
  std::uint64_t count = 1;
  for (auto extent : stored.shape) count *= static_cast<std::uint64_t>(extent);
  return count * kernels::dtype_size(type);
}

// Greedy in file order; a tensor larger than the limit gets a shard of its own.
std::vector<shard> plan_shards(const std::vector<stored_tensor>& stored, kernels::dtype type, std::uint64_t max_bytes) {
  std::vector<shard> shards(1);
  for (const auto& tensor : stored) {
    const auto bytes = stored_bytes(tensor, type);
    if (!shards.back().tensors.empty() && shards.back().bytes + bytes > max_bytes) shards.emplace_back();
    shards.back().tensors.push_back(&tensor);
    shards.back().bytes += bytes;
  }
  return shards;
}

// Fills bytes of a stored tensor; a fused tensor's rows come from each part's own generator.
void fill_stored(std::uint64_t seed, const stored_tensor& stored, kernels::dtype type, std::size_t byte_offset, std::span<std::byte> out) {
  const std::size_t item = kernels::dtype_size(type);
  const std::size_t first = byte_offset / item;
  const std::size_t last = first + out.size() / item;
  std::size_t part_start = 0;
  for (const auto& part : stored.parts) {
    std::size_t part_count = 1;
    for (auto extent : part.shape) part_count *= static_cast<std::size_t>(extent);
    const std::size_t begin = std::max(first, part_start);
    const std::size_t end = std::min(last, part_start + part_count);
    if (begin < end) generate_weights(seed, part, type, begin - part_start, out.subspan((begin - first) * item, (end - begin) * item));
    part_start += part_count;
  }
}

std::string shard_name(std::size_t index, std::size_t count) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", index + 1, count);
  return name;
}

void write_weights(const make_model_options& options, const model_config& config) {
  const auto stored = stored_tensors(config);
  const auto shards = plan_shards(stored, options.dtype, options.max_shard_bytes);
  const std::uint64_t total = preset_weight_bytes(config);
  const bool report = total > large_checkpoint_bytes;
  if (report)
    progress_line("make-model: " + options.preset + " (" + std::string(layout_name(config.layout)) + ", " +
                  std::string(kernels::dtype_name(options.dtype)) + ", seed " + std::to_string(options.seed) + "): " + format_bytes(total) +
                  " in " + std::to_string(shards.size()) + " file(s) -> " + options.out_dir.string());

  const std::map<std::string, std::string> metadata{{"format", "pt"}};
  std::map<std::string, std::string> weight_map;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    const auto started = std::chrono::steady_clock::now();
    const std::string name = shards.size() == 1 ? "model.safetensors" : shard_name(i, shards.size());
    std::vector<tensor_record> records;
    for (const auto* tensor : shards[i].tensors) {
      records.push_back({tensor->name, options.dtype, tensor->shape});
      weight_map[tensor->name] = name;
    }
    write_safetensors(
        options.out_dir / name, records,
        [&](std::size_t index, std::size_t offset, std::span<std::byte> out) {
          fill_stored(options.seed, *shards[i].tensors[index], options.dtype, offset, out);
        },
        metadata);
    if (report) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      char timing[64];
      std::snprintf(timing, sizeof timing, "%.1f s, %.2f GiB/s", seconds, static_cast<double>(shards[i].bytes) / (1 << 30) / std::max(seconds, 1e-9));
      progress_line("  [" + std::to_string(i + 1) + "/" + std::to_string(shards.size()) + "] " + name + " " + format_bytes(shards[i].bytes) +
                    " (" + timing + ")");
    }
  }
  if (shards.size() > 1) {
    boost::json::object index;
    index["metadata"] = boost::json::object{{"total_size", total}};
    boost::json::object map;
    for (const auto& [tensor, file] : weight_map) map[tensor] = file;
    index["weight_map"] = std::move(map);
    write_text(options.out_dir / "model.safetensors.index.json", pretty_json(index));
  }
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets) names.emplace_back(p.name);
  return names;
}

std::optional<model_config> preset_config(std::string_view name, checkpoint_layout layout, kernels::dtype dtype) {
  for (const auto& p : presets) {
    if (p.name != name) continue;
    model_config config;
    config.layout = layout;
    config.vocab_size = p.vocab_size;
    config.hidden_size = p.hidden_size;
    config.intermediate_size = p.intermediate_size;
    config.num_layers = p.num_layers;
    config.num_heads = p.num_heads;
    config.num_kv_heads = p.num_kv_heads;
    config.head_dim = p.head_dim;
    config.rotary_dim = p.head_dim / 2;
    config.rope_theta = p.rope_theta;
    config.rms_norm_eps = 1.5625e-07;
    config.qkv_bias = true;
    config.post_norms = layout == checkpoint_layout::glm4;
    config.tie_word_embeddings = false;
    config.max_position_embeddings = p.max_position_embeddings;
    config.torch_dtype = dtype;
    return config;
  }
  return std::nullopt;
}

std::uint64_t preset_weight_bytes(const model_config& config) {
  std::uint64_t total = 0;
  for (const auto& stored : stored_tensors(config)) total += stored_bytes(stored, config.torch_dtype);
  return total;
}

void make_model(const make_model_options& options) {
  if (options.dtype != kernels::dtype::f32 && options.dtype != kernels::dtype::f16 && options.dtype != kernels::dtype::bf16)
    throw checkpoint_error("make-model: unsupported dtype " + std::string(kernels::dtype_name(options.dtype)) + " (F32, F16 or BF16)");
  const auto config = preset_config(options.preset, options.layout, options.dtype);
  if (!config) {
    std::string names;
    for (const auto& name : preset_names()) names += (names.empty() ? "" : ", ") + name;
    throw checkpoint_error("make-model: unknown preset \"" + options.preset + "\" (presets: " + names + ")");
  }
  if (options.out_dir.empty()) throw checkpoint_error("make-model: no output directory");
  const generation_config generation = tokenizer_stop_ids();
  std::error_code error;
  fs::create_directories(options.out_dir, error);
  if (error || !fs::is_directory(options.out_dir))
    throw checkpoint_error(options.out_dir.string() + ": cannot create directory" + (error ? ": " + error.message() : ""));

  remove_old_weights(options.out_dir);
  write_weights(options, *config);
  if (options.layout == checkpoint_layout::chatglm) {
    write_text(options.out_dir / "tokenizer.model", embedded("tokenizer.model"));
  } else {
    write_text(options.out_dir / "tokenizer.json", embedded("tokenizer.json"));
  }
  write_text(options.out_dir / "tokenizer_config.json", embedded("tokenizer_config.json"));
  write_text(options.out_dir / "generation_config.json", generation_config_json_text(*config, generation));
  // Written last: a directory with a config.json is a finished checkpoint.
  write_text(options.out_dir / "config.json", config_json_text(*config, generation));
}

}  // namespace glm4::model
