#include "config/device_spec.hpp"

#include <charconv>

namespace glm4::config {

std::string_view kind_name(device_kind kind) { return kind == device_kind::cuda ? "cuda" : "cpu"; }

std::optional<device_spec> parse_device(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view kind = text.substr(0, colon), number = text.substr(colon + 1);
  device_spec device;
  if (kind == "cuda") device.kind = device_kind::cuda;
  else if (kind == "cpu") device.kind = device_kind::cpu;
  else return std::nullopt;
  if (number.empty() || number.size() > 6) return std::nullopt;
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), device.index);
  if (error != std::errc() || end != number.data() + number.size() || device.index < 0) return std::nullopt;
  return device;
}

std::string to_string(const device_spec& device) {
  return std::string(kind_name(device.kind)) + ':' + std::to_string(device.index);
}

}  // namespace glm4::config
