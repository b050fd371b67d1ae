// Device memory of the emulated CUDA runtime: allocations between guard pages, the check of their slack,
// copies and memsets.
#include <cuda_runtime.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
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

std::size_t page_bytes() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

// An allocation of `granular` bytes (whole granules) maps a guard page, the pages that hold it, and a
// guard page: [guard][before ... allocation][guard], the allocation ending at the second guard.
std::size_t mapped_bytes(std::size_t granular) {
  const std::size_t page = page_bytes();
  return page + (granular + page - 1) / page * page + page;
}

char* region_of(const void* memory, std::size_t granular) {
  return static_cast<char*>(const_cast<void*>(memory)) + granular + page_bytes() - mapped_bytes(granular);
}

// Device memory lies between inaccessible pages, so a kernel reading or writing past either end of its
// buffer by more than the slack crashes at the access, as a GPU's illegal-address fault would, instead of
// reaching a neighbour; freed memory is unmapped, so late replays crash the same way. The allocation and
// its slack (before it, and past its size to the end of its granule) are filled with 0xFF: unwritten
// floats read as NaN, and expect_slack_untouched finds writes into the slack.
void* map_between_guard_pages(std::size_t granular) {
  const std::size_t mapped = mapped_bytes(granular), page = page_bytes();
  void* mapping = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) return nullptr;
  char* region = static_cast<char*>(mapping);
  mprotect(region, page, PROT_NONE);
  mprotect(region + mapped - page, page, PROT_NONE);
  std::memset(region + page, 0xFF, mapped - 2 * page);
  return region + mapped - page - granular;
}

void unmap_between_guard_pages(void* memory, std::size_t granular) {
  munmap(region_of(memory, granular), mapped_bytes(granular));
}

// The first byte of [begin, end) that is no longer 0xFF, or end.
const unsigned char* first_written(const unsigned char* begin, const unsigned char* end) {
  return std::find_if(begin, end, [](unsigned char byte) { return byte != 0xFF; });
}

}  // namespace

namespace glm4::emulated_cuda {

void expect_slack_untouched(const void* address, const std::string& who) {
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  const auto next = s.allocations.upper_bound(reinterpret_cast<std::uintptr_t>(address));
  if (next == s.allocations.begin()) return;
  const auto& [base, allocation] = *std::prev(next);
  const auto* start = reinterpret_cast<const unsigned char*>(base);
  if (!inside_allocation(s, address, 1)) return;
  const std::size_t granular = granules(allocation.bytes);
  const auto* before = reinterpret_cast<const unsigned char*>(region_of(start, granular)) + page_bytes();
  const unsigned char* written = first_written(before, start);
  if (written == start) written = first_written(start + allocation.bytes, start + granular);
  if (written == start + granular) return;
  const std::ptrdiff_t offset = written - start;
  throw std::runtime_error("emulated CUDA: " + who + " wrote at byte " + std::to_string(offset) +
                           (offset < 0 ? ", before the start" : ", past the end") + " of its " +
                           std::to_string(allocation.bytes) + "-byte cudaMalloc allocation");
}

}  // namespace glm4::emulated_cuda

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
  void* memory = map_between_guard_pages(granules(size));
  if (memory == nullptr) return result(cudaErrorMemoryAllocation);
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
  unmap_between_guard_pages(devPtr, granules(found->second.bytes));
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
