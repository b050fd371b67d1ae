#include "tests/kernels/op_test_support.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <sstream>

namespace glm4::test {
namespace {

using kernels::dtype;

host_tensor make_host(dtype type, std::vector<std::int64_t> shape) {
  host_tensor host;
  host.view.type = type;
  host.view.shape = std::move(shape);
  host.storage = std::make_shared<std::vector<std::byte>>(host.view.nbytes() + 1);
  host.view.data = host.storage->data();
  host.view.owner = host.storage;
  return host;
}

void store(host_tensor& host, std::int64_t i, float value) {
  std::byte* at = static_cast<std::byte*>(host.view.data) + i * static_cast<std::int64_t>(kernels::dtype_size(host.view.type));
  switch (host.view.type) {
    case dtype::f32: std::memcpy(at, &value, 4); break;
    case dtype::bf16: {
      const std::uint16_t bits = kernels::f32_to_bf16(value);
      std::memcpy(at, &bits, 2);
      break;
    }
    case dtype::f16: {
      const std::uint16_t bits = kernels::f32_to_f16(value);
      std::memcpy(at, &bits, 2);
      break;
    }
    case dtype::i32: FAIL("store of a float into an I32 tensor");
  }
  host.values[static_cast<std::size_t>(i)] = round_to(host.view.type, value);
}

}  // namespace

double round_to(dtype type, float value) {
  switch (type) {
    case dtype::bf16: return kernels::bf16_to_f32(kernels::f32_to_bf16(value));
    case dtype::f16: return kernels::f16_to_f32(kernels::f32_to_f16(value));
    default: return value;
  }
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ',';
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

host_tensor random_tensor(std::mt19937& rng, dtype type, std::vector<std::int64_t> shape, double low, double high) {
  host_tensor host = make_host(type, std::move(shape));
  host.values.resize(static_cast<std::size_t>(host.view.numel()));
  std::uniform_real_distribution<double> uniform(low, high);
  for (std::int64_t i = 0; i < host.view.numel(); ++i) store(host, i, static_cast<float>(uniform(rng)));
  return host;
}

host_tensor float_tensor(dtype type, std::vector<std::int64_t> shape, const std::vector<float>& values) {
  host_tensor host = make_host(type, std::move(shape));
  REQUIRE(static_cast<std::int64_t>(values.size()) == host.view.numel());
  host.values.resize(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) store(host, static_cast<std::int64_t>(i), values[i]);
  return host;
}

host_tensor int_tensor(std::vector<std::int64_t> shape, const std::vector<std::int32_t>& values) {
  host_tensor host = make_host(dtype::i32, std::move(shape));
  REQUIRE(static_cast<std::int64_t>(values.size()) == host.view.numel());
  if (!values.empty()) std::memcpy(host.view.data, values.data(), values.size() * sizeof(std::int32_t));
  host.values.assign(values.begin(), values.end());
  return host;
}

kernels::tensor upload(kernels::backend& backend, const host_tensor& host) {
  kernels::tensor device = backend.alloc(host.view.type, host.view.shape);
  backend.upload(device, host.view.data);
  return device;
}

std::vector<float> download(kernels::backend& backend, const kernels::tensor& device) {
  REQUIRE(device.type != dtype::i32);
  std::vector<float> host(static_cast<std::size_t>(device.numel()));
  if (device.type == dtype::f32) {
    backend.download(device, host.data());
    return host;
  }
  std::vector<std::uint16_t> bits(host.size());
  backend.download(device, bits.data());
  for (std::size_t i = 0; i < bits.size(); ++i)
    host[i] = device.type == dtype::bf16 ? kernels::bf16_to_f32(bits[i]) : kernels::f16_to_f32(bits[i]);
  return host;
}

std::string compare(const std::vector<float>& got, const std::vector<double>& want, const tolerance& tol) {
  if (got.size() != want.size())
    return "size " + std::to_string(got.size()) + " != reference size " + std::to_string(want.size());
  double error = 0.0, norm = 0.0;
  std::ostringstream first_bad;
  std::size_t num_bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) && std::isfinite(want[i])) return "non-finite " + std::to_string(got[i]) + " at " + std::to_string(i);
    const double diff = got[i] - want[i];
    error += diff * diff;
    norm += want[i] * want[i];
    if (std::fabs(diff) > tol.abs + tol.rel * std::fabs(want[i])) {
      if (num_bad++ == 0) first_bad << "element " << i << ": got " << got[i] << ", want " << want[i];
    }
  }
  const double nmse = norm > 1e-20 ? error / norm : error;  // all-zero references: absolute
  if (num_bad > 0) {
    std::ostringstream text;
    text << num_bad << " elements outside abs " << tol.abs << " + rel " << tol.rel << "; " << first_bad.str()
         << "; nmse " << nmse;
    return text.str();
  }
  if (nmse > tol.max_nmse) return "nmse " + std::to_string(nmse) + " > " + std::to_string(tol.max_nmse);
  return {};
}

void run_cases(kernels::backend& backend, const std::vector<std::unique_ptr<op_case>>& cases) {
  REQUIRE_FALSE(cases.empty());
  std::size_t num_failed = 0;
  for (const auto& one : cases) {
    std::string failure;
    try {
      failure = one->eval(backend);
    } catch (const std::exception& error) {
      failure = std::string("threw: ") + error.what();
    }
    if (!failure.empty()) {
      ++num_failed;
      FAIL_CHECK(backend.name() << ": " << one->op_name() << "(" << one->vars() << "): " << failure);
    }
  }
  INFO(backend.name() << ": " << cases.size() - num_failed << "/" << cases.size() << " cases passed");
  CHECK(num_failed == 0);
}

std::vector<std::unique_ptr<kernels::backend>> backends_under_test() {
  std::vector<std::unique_ptr<kernels::backend>> backends;
  backends.push_back(kernels::make_cpu_backend(1));
  backends.push_back(kernels::make_cpu_backend(3));  // more threads than rows in small cases
  return backends;
}

}  // namespace glm4::test
