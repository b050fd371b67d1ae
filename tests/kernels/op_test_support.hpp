// test-backend-ops style support: host tensors with exact reference values, device round trips,
// and the NMSE / abs+rel / NaN comparison every op case uses.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.hpp"
#include "kernels/tensor.hpp"

namespace glm4::test {

/// A host tensor plus the exact values it holds, widened to double (what a reference reads).
struct host_tensor {
  kernels::tensor view;              // host memory owned by `storage`
  std::vector<double> values;        // numel() values; the stored element for F16/BF16
  std::shared_ptr<std::vector<std::byte>> storage;

  const std::vector<std::int64_t>& shape() const { return view.shape; }
};

/// Uniform values in [low, high), rounded to `type`.
host_tensor random_tensor(std::mt19937& rng, kernels::dtype type, std::vector<std::int64_t> shape, double low = -1.0,
                          double high = 1.0);
/// Float values given exactly (rounded to `type`).
host_tensor float_tensor(kernels::dtype type, std::vector<std::int64_t> shape, const std::vector<float>& values);
host_tensor int_tensor(std::vector<std::int64_t> shape, const std::vector<std::int32_t>& values);
/// `value` as a tensor of `type` stores it (round to nearest even; F16 overflows to inf).
double round_to(kernels::dtype type, float value);

/// A device copy of a host tensor (alloc + upload, never the zero-copy path).
kernels::tensor upload(kernels::backend& backend, const host_tensor& host);
/// The device tensor on the host, F16/BF16 widened to F32.
std::vector<float> download(kernels::backend& backend, const kernels::tensor& device);

struct tolerance {
  double max_nmse = 1e-10;  // sum((got - want)^2) / sum(want^2)
  double abs = 1e-5;        // per element: |got - want| <= abs + rel * |want|
  double rel = 1e-4;
};

/// Empty when `got` matches `want`; otherwise what went wrong (first bad element, NMSE, NaN/Inf).
std::string compare(const std::vector<float>& got, const std::vector<double>& want, const tolerance& tol);

/// One op with one set of parameters. eval() runs it on the backend and compares with a naive
/// double-accumulation reference; vars() is printed when it fails.
struct op_case {
  virtual ~op_case() = default;
  virtual std::string op_name() const = 0;
  virtual std::string vars() const = 0;
  virtual std::string eval(kernels::backend& backend) = 0;
};

/// Runs every case, reporting each failure with its op name and parameters.
void run_cases(kernels::backend& backend, const std::vector<std::unique_ptr<op_case>>& cases);

/// The backends every op case runs on (the CPU backend with 1 and with several threads).
std::vector<std::unique_ptr<kernels::backend>> backends_under_test();

std::string shape_text(const std::vector<std::int64_t>& shape);

}  // namespace glm4::test
