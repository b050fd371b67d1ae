// A thread-safe metrics registry rendered in Prometheus text exposition format 0.0.4.
//   # HELP name text
//   # TYPE name counter|gauge|histogram
//   name{label="value"} 1
//   name_bucket{le="0.5"} 3   (cumulative, then le="+Inf"), name_sum, name_count
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace glm4::http {

using metric_labels = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Only ever grows: a negative or NaN amount is ignored.
class counter {
 public:
  void inc(double amount = 1.0) {
    if (amount > 0.0) value_.fetch_add(amount, std::memory_order_relaxed);
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void inc(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void dec(double amount = 1.0) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

/// Fixed upper bounds (ascending, +Inf implied). A mutex keeps each snapshot consistent: the
/// +Inf bucket always equals _count.
class histogram {
 public:
  struct snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // bounds.size() + 1 entries, the last is +Inf
    double sum = 0.0;
    std::uint64_t count = 0;
  };

  /// Throws std::invalid_argument unless bounds are finite and strictly ascending.
  explicit histogram(std::vector<double> bounds);
  void observe(double value);
  snapshot read() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative
  double sum_ = 0.0;
};

/// Registration and rendering may run from any thread; the returned references stay valid for
/// the registry's life. Metrics of one name with different labels form one family.
class metrics_registry {
 public:
  /// Throws std::invalid_argument for a bad name or label name, a name registered with another
  /// type, or a label set registered twice.
  counter& add_counter(const std::string& name, const std::string& help, metric_labels labels = {});
  gauge& add_gauge(const std::string& name, const std::string& help, metric_labels labels = {});
  histogram& add_histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                           metric_labels labels = {});

  std::string render() const;

 private:
  enum class kind { counter, gauge, histogram };
  struct series {
    metric_labels labels;
    std::unique_ptr<counter> as_counter;
    std::unique_ptr<gauge> as_gauge;
    std::unique_ptr<histogram> as_histogram;
  };
  struct family {
    std::string name;
    std::string help;
    kind type;
    std::vector<series> members;
  };

  void add(const std::string& name, const std::string& help, kind type, series member);

  mutable std::mutex mutex_;
  std::vector<family> families_;  // registration order
};

/// A Prometheus sample value: "+Inf", "-Inf", "NaN", else the shortest round-tripping decimal.
std::string format_metric_value(double value);
/// Label value escaping: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);

}  // namespace glm4::http
