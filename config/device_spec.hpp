// A device name of cluster.toml: "cuda:0", "cpu:1".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace glm4::config {

enum class device_kind { cpu, cuda };

struct device_spec {
  device_kind kind = device_kind::cpu;
  int index = 0;  // CUDA ordinal, or the rank number of a CPU stage

  bool operator==(const device_spec&) const = default;
};

std::string_view kind_name(device_kind kind);

/// "cuda:N" or "cpu:N" with N a non-negative decimal; nullopt for anything else.
std::optional<device_spec> parse_device(std::string_view text);

/// "cuda:0".
std::string to_string(const device_spec& device);

}  // namespace glm4::config
