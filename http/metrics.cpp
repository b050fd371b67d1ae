// Prometheus text exposition of the registry.
#include "http/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace glm4::http {
namespace {

bool valid_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// HELP text escapes backslash and newline only.
std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string label_block(const metric_labels& labels, const std::pair<std::string, std::string>* extra = nullptr) {
  if (labels.empty() && !extra) return {};
  std::string out = "{";
  bool first = true;
  auto append = [&](const std::string& name, const std::string& value) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
  };
  for (const auto& [name, value] : labels) append(name, value);
  if (extra) append(extra->first, extra->second);
  out += '}';
  return out;
}

const char* type_name(int type) {
  switch (type) {
    case 0: return "counter";
    case 1: return "gauge";
    default: return "histogram";
  }
}

}  // namespace

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

histogram::histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) throw std::invalid_argument("histogram bounds must be finite");
    if (i > 0 && !(bounds_[i - 1] < bounds_[i]))
      throw std::invalid_argument("histogram bounds must be strictly ascending");
  }
}

void histogram::observe(double value) {
  // Prometheus buckets are "less than or equal": value == bound lands in that bound's bucket.
  const auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  std::lock_guard lock(mutex_);
  ++counts_[bucket];
  sum_ += value;
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.bounds = bounds_;
  std::lock_guard lock(mutex_);
  s.cumulative.reserve(counts_.size());
  std::uint64_t running = 0;
  for (std::uint64_t c : counts_) {
    running += c;
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = sum_;
  return s;
}

void metrics_registry::add(const std::string& name, const std::string& help, kind type, series member) {
  const metric_labels& labels = member.labels;
  if (!valid_name(name, true)) throw std::invalid_argument("invalid metric name '" + name + "'");
  for (const auto& [label, value] : labels)
    if (!valid_name(label, false) || label.rfind("__", 0) == 0 || (type == kind::histogram && label == "le"))
      throw std::invalid_argument("invalid label name '" + label + "' on metric '" + name + "'");
  std::lock_guard lock(mutex_);
  auto it = std::find_if(families_.begin(), families_.end(), [&](const family& f) { return f.name == name; });
  if (it == families_.end()) {
    families_.push_back({name, help, type, {}});
    it = std::prev(families_.end());
  } else if (it->type != type) {
    throw std::invalid_argument("metric '" + name + "' is already registered with another type");
  }
  for (const auto& existing : it->members)
    if (existing.labels == labels)
      throw std::invalid_argument("metric '" + name + "' is already registered with these labels");
  it->members.push_back(std::move(member));
}

counter& metrics_registry::add_counter(const std::string& name, const std::string& help, metric_labels labels) {
  auto owned = std::make_unique<counter>();
  counter& result = *owned;
  add(name, help, kind::counter, {std::move(labels), std::move(owned), nullptr, nullptr});
  return result;
}

gauge& metrics_registry::add_gauge(const std::string& name, const std::string& help, metric_labels labels) {
  auto owned = std::make_unique<gauge>();
  gauge& result = *owned;
  add(name, help, kind::gauge, {std::move(labels), nullptr, std::move(owned), nullptr});
  return result;
}

histogram& metrics_registry::add_histogram(const std::string& name, const std::string& help,
                                           std::vector<double> bounds, metric_labels labels) {
  auto owned = std::make_unique<histogram>(std::move(bounds));
  histogram& result = *owned;
  add(name, help, kind::histogram, {std::move(labels), nullptr, nullptr, std::move(owned)});
  return result;
}

std::string metrics_registry::render() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const family& f : families_) {
    out += "# HELP " + f.name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + f.name + " " + type_name(static_cast<int>(f.type)) + "\n";
    for (const series& s : f.members) {
      if (s.as_counter) {
        out += f.name + label_block(s.labels) + " " + format_metric_value(s.as_counter->value()) + "\n";
      } else if (s.as_gauge) {
        out += f.name + label_block(s.labels) + " " + format_metric_value(s.as_gauge->value()) + "\n";
      } else if (s.as_histogram) {
        const histogram::snapshot snap = s.as_histogram->read();
        for (std::size_t i = 0; i <= snap.bounds.size(); ++i) {
          const std::pair<std::string, std::string> le{
              "le", i < snap.bounds.size() ? format_metric_value(snap.bounds[i]) : "+Inf"};
          out += f.name + "_bucket" + label_block(s.labels, &le) + " " + std::to_string(snap.cumulative[i]) + "\n";
        }
        out += f.name + "_sum" + label_block(s.labels) + " " + format_metric_value(snap.sum) + "\n";
        out += f.name + "_count" + label_block(s.labels) + " " + std::to_string(snap.count) + "\n";
      }
    }
  }
  return out;
}

}  // namespace glm4::http
