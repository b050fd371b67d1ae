// Device memory of the emulated CUDA runtime: allocations against guard pages, copies and memsets.
#include <cuda_runtime.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>

#include "tests/kernels/emulated_cuda/emulated_runtime_state.hpp"

using namespace glm4::emulated_cuda;

namespace {

// A recorded copy or memset may replay after its memory was freed: a GPU would fault there.
void expect_device_memory(const char* call, const void* address, std::size_t bytes) {
  if (in_device_allocation(address, bytes)) return;
  throw std::runtime_error(std::string("emulated CUDA: ") + call + " touches " + std::to_string(bytes) +
                           " bytes at " + std::to_string(reinterpret_cast<std::uintptr_t>(address)) +
                           " outside any live cudaMalloc allocation (freed since it was recorded?)");
}

struct copy_sides {
  bool dst_device = false;
  bool src_device = false;
};

// Which ends of a copy are device memory; those must lie inside allocations.
cudaError_t classify_copy(const void* dst, std::size_t dst_span, const void* src, std::size_t src_span,
                          cudaMemcpyKind kind, copy_sides& sides) {
  const runtime_state& s = state();
  const std::lock_guard lock(state().mutex);
  switch (kind) {
    case cudaMemcpyHostToHost: sides = {false, false}; break;
    case cudaMemcpyHostToDevice: sides = {true, false}; break;
    case cudaMemcpyDeviceToHost: sides = {false, true}; break;
    case cudaMemcpyDeviceToDevice: sides = {true, true}; break;
    case cudaMemcpyDefault: sides = {inside_allocation(s, dst, 1), inside_allocation(s, src, 1)}; break;
    default: return cudaErrorInvalidMemcpyDirection;
  }
  if (sides.dst_device && !inside_allocation(s, dst, dst_span)) return cudaErrorInvalidValue;
  if (sides.src_device && !inside_allocation(s, src, src_span)) return cudaErrorInvalidValue;
  return cudaSuccess;
}

// Rows of `width` bytes, `pitch` apart; a plain copy is one row.
cudaError_t copy_rows(const char* call, void* dst, std::size_t dst_pitch, const void* src, std::size_t src_pitch,
                      std::size_t width, std::size_t height, cudaMemcpyKind kind, cudaStream_t stream) {
  if (width == 0 || height == 0) return cudaSuccess;
  if (dst_pitch < width || src_pitch < width) return cudaErrorInvalidPitchValue;
  if (dst == nullptr || src == nullptr) return cudaErrorInvalidValue;
  const std::size_t dst_span = dst_pitch * (height - 1) + width, src_span = src_pitch * (height - 1) + width;
  copy_sides sides;
  if (const cudaError_t error = classify_copy(dst, dst_span, src, src_span, kind, sides); error != cudaSuccess)
    return error;
  std::function<void()> work = [=] {
    if (sides.dst_device) expect_device_memory(call, dst, dst_span);
    if (sides.src_device) expect_device_memory(call, src, src_span);
    for (std::size_t row = 0; row < height; ++row)
      std::memmove(static_cast<char*>(dst) + row * dst_pitch, static_cast<const char*>(src) + row * src_pitch, width);
  };
  return submit(stream, work);
}

std::size_t mapped_bytes(std::size_t bytes) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page + page;
}

// Device memory ends against an inaccessible page, so a kernel reading or writing past the end of its
// buffer (past the 256-byte granule) crashes at the access, as a GPU's illegal-address fault would,
// instead of reaching a neighbour; freed memory is unmapped, so late replays crash the same way.
void* map_against_guard_page(std::size_t bytes) {
  const std::size_t mapped = mapped_bytes(bytes);
  void* region = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) return nullptr;
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  char* guard = static_cast<char*>(region) + mapped - page;
  mprotect(guard, page, PROT_NONE);
  return guard - bytes;
}

void unmap_against_guard_page(void* memory, std::size_t bytes) {
  const std::size_t mapped = mapped_bytes(bytes);
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  munmap(static_cast<char*>(memory) + bytes + page - mapped, mapped);
}

}  // namespace

extern "C" {

cudaError_t cudaMalloc(void** devPtr, size_t size) {
  if (devPtr == nullptr) return result(cudaErrorInvalidValue);
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  if (refuse_unsafe_call(s)) return result(cudaErrorStreamCaptureUnsupported);
  if (size == 0) {
    *devPtr = nullptr;
    return cudaSuccess;
  }
  std::size_t& allocated = s.allocated_bytes[static_cast<std::size_t>(current_device)];
  const std::size_t budget_left = device_memory_bytes - allocated;
  if (size > budget_left || granules(size) > budget_left) return result(cudaErrorMemoryAllocation);
  void* memory = map_against_guard_page(granules(size));
  if (memory == nullptr) return result(cudaErrorMemoryAllocation);
  std::memset(memory, 0xFF, granules(size));  // reads before the first write show up as NaN
  s.allocations.emplace(reinterpret_cast<std::uintptr_t>(memory), runtime_state::allocation{size, current_device});
  allocated += granules(size);
  *devPtr = memory;
  return cudaSuccess;
}

cudaError_t cudaFree(void* devPtr) {
  if (devPtr == nullptr) return cudaSuccess;
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  if (refuse_unsafe_call(s)) return result(cudaErrorStreamCaptureUnsupported);  // it synchronizes, as cudaMalloc may
  const auto found = s.allocations.find(reinterpret_cast<std::uintptr_t>(devPtr));
  if (found == s.allocations.end()) return result(cudaErrorInvalidValue);
  s.allocated_bytes[static_cast<std::size_t>(found->second.device)] -= granules(found->second.bytes);
  unmap_against_guard_page(devPtr, granules(found->second.bytes));
  s.allocations.erase(found);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  if (free == nullptr || total == nullptr) return result(cudaErrorInvalidValue);
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  *total = device_memory_bytes;
  *free = device_memory_bytes - s.allocated_bytes[static_cast<std::size_t>(current_device)];
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  return result(copy_rows("cudaMemcpyAsync", dst, count, src, count, count, 1, kind, stream));
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  return result(copy_rows("cudaMemcpy", dst, count, src, count, count, 1, kind, nullptr));
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t stream) {
  return result(copy_rows("cudaMemcpy2DAsync", dst, dpitch, src, spitch, width, height, kind, stream));
}

cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (!in_device_allocation(devPtr, count)) return result(cudaErrorInvalidValue);
  std::function<void()> work = [=] {
    expect_device_memory("cudaMemsetAsync", devPtr, count);
    std::memset(devPtr, value, count);
  };
  return result(submit(stream, work));
}

}  // extern "C"
