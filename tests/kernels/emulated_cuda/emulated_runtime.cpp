// The CUDA runtime of the host emulation (emulated_cuda.hpp), linked instead of libcudart: GPUs whose memory
// is host memory, streams whose work runs at once on the calling thread unless the stream is capturing a graph,
// and graphs that replay what was captured. This file: the state, errors and device queries; memory and streams
// are in emulated_memory_calls.cpp and emulated_stream_calls.cpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/kernels/emulated_cuda/emulated_cuda.hpp"
#include "tests/kernels/emulated_cuda/emulated_runtime.hpp"
#include "tests/kernels/emulated_cuda/emulated_runtime_state.hpp"

namespace glm4::emulated_cuda {

// Never destroyed: a backend held in a static may free its memory after this file's statics are gone.
runtime_state& state() {
  static auto* const instance = new runtime_state;
  return *instance;
}

thread_local cudaError_t last_error = cudaSuccess;
thread_local int current_device = 0;

// Every failing call leaves its error for cudaGetLastError, as CUDA does.
cudaError_t result(cudaError_t error) {
  if (error != cudaSuccess) last_error = error;
  return error;
}

std::size_t granules(std::size_t bytes) {
  return (bytes + allocation_granule - 1) / allocation_granule * allocation_granule;
}

bool is_default_stream(cudaStream_t stream) {
  return stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
}

// The functions below taking a runtime_state& expect its mutex held.

bool known_stream(const runtime_state& s, cudaStream_t stream) {
  return is_default_stream(stream) || s.streams.count(stream) != 0;
}

bool inside_allocation(const runtime_state& s, const void* address, std::size_t bytes) {
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  const auto next = s.allocations.upper_bound(at);
  if (next == s.allocations.begin()) return false;
  const std::uintptr_t base = std::prev(next)->first;
  const std::size_t size = std::prev(next)->second.bytes;
  return at - base <= size && bytes <= size - (at - base);
}

// Calls that may synchronize implicitly (cudaMalloc) are refused during a capture they could
// break: a global-mode one on any thread, a thread-local one begun on this thread. The refusal
// invalidates this thread's captures.
bool refuse_unsafe_call(runtime_state& s) {
  const auto self = std::this_thread::get_id();
  bool refused = false;
  for (cudaStream_t stream : s.streams) {
    if (stream->capture != cudaStreamCaptureStatusActive || stream->mode == cudaStreamCaptureModeRelaxed) continue;
    const bool mine = stream->capturing_thread == self;
    if (stream->mode == cudaStreamCaptureModeGlobal || mine) refused = true;
    if (mine) stream->capture = cudaStreamCaptureStatusInvalidated;
  }
  return refused;
}

bool is_legacy_stream(cudaStream_t stream) { return stream == nullptr || stream == cudaStreamLegacy; }

// The legacy default stream waits for every blocking stream, which a capturing one cannot allow:
// CUDA refuses the call and invalidates the capture.
bool breaks_blocking_capture(runtime_state& s) {
  bool broken = false;
  for (cudaStream_t stream : s.streams)
    if ((stream->flags & cudaStreamNonBlocking) == 0 && stream->capture == cudaStreamCaptureStatusActive) {
      stream->capture = cudaStreamCaptureStatusInvalidated;
      broken = true;
    }
  return broken;
}

cudaError_t submit(cudaStream_t stream, std::function<void()>& work) {
  {
    runtime_state& s = state();
    const std::lock_guard lock(s.mutex);
    if (!known_stream(s, stream)) return cudaErrorInvalidResourceHandle;
    if (is_legacy_stream(stream) && breaks_blocking_capture(s)) return cudaErrorStreamCaptureImplicit;
    if (!is_default_stream(stream)) {
      if (stream->capture == cudaStreamCaptureStatusInvalidated) return cudaErrorStreamCaptureInvalidated;
      if (stream->capture == cudaStreamCaptureStatusActive) {
        stream->recorded.push_back(std::move(work));
        return cudaSuccess;
      }
    }
  }
  work();  // threads run work at the same time, as GPUs and streams do (shared memory is per thread)
  return cudaSuccess;
}

int parse_emulated_sm(const char* text) {
  if (text == nullptr || *text == '\0') return 90;
  const std::string value(text);
  const auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  const bool well_formed = (value.size() == 2 || value.size() == 3) && value.front() != '0' &&
                           std::all_of(value.begin(), value.end(), digit);
  if (!well_formed)
    throw std::invalid_argument("GLM4_EMULATED_SM is '" + value +
                                "': give the compute capability times ten, such as 75, 80 or 90");
  return std::stoi(value);
}

void enqueue(cudaStream_t stream, std::function<void()> work) { result(submit(stream, work)); }

cudaError_t try_enqueue(cudaStream_t stream, std::function<void()> work) { return submit(stream, work); }

void set_last_error(cudaError_t error) { last_error = error; }

int parse_emulated_gpu_count(const char* text) {
  if (text == nullptr || *text == '\0') return 1;
  const std::string value(text);
  if (value.size() != 1 || value[0] < '1' || value[0] > '0' + max_emulated_gpus)
    throw std::invalid_argument("GLM4_EMULATED_GPUS is '" + value + "': give a number of GPUs from 1 to " +
                                std::to_string(max_emulated_gpus));
  return value[0] - '0';
}

int emulated_gpu_count() {
  static const int count = parse_emulated_gpu_count(std::getenv("GLM4_EMULATED_GPUS"));
  return count;
}

int current_gpu() { return current_device; }

std::optional<int> stream_gpu(cudaStream_t stream) {
  if (is_default_stream(stream)) return current_device;
  const runtime_state& s = state();
  const std::lock_guard lock(state().mutex);
  if (s.streams.count(stream) == 0) return std::nullopt;
  return stream->device;
}

std::optional<int> allocation_gpu(const void* address) {
  const runtime_state& s = state();
  const std::lock_guard lock(state().mutex);
  if (!inside_allocation(s, address, 1)) return std::nullopt;
  return std::prev(s.allocations.upper_bound(reinterpret_cast<std::uintptr_t>(address)))->second.device;
}

namespace {

// The driver's rule, written here apart from kernels/arch_support (which it checks): SASS built for
// X.Y runs on X.y for y >= Y ("a" kinds on X.Y exactly); PTX for X.Y is compiled for any later GPU.
bool image_runs_on(std::string entry, int sm) {
  const bool sass_only = entry.ends_with("-real"), ptx_only = entry.ends_with("-virtual");
  if (sass_only) entry.resize(entry.size() - 5);
  if (ptx_only) entry.resize(entry.size() - 8);
  const bool exact = !entry.empty() && entry.back() == 'a';
  const bool family = !entry.empty() && entry.back() == 'f';
  if (exact || family) entry.pop_back();
  const int target = std::stoi(entry);
  if (exact) return sm == target;
  const bool sass = !ptx_only && sm / 10 == target / 10 && sm % 10 >= target % 10;
  const bool ptx = !sass_only && !family && sm >= target;
  return sass || ptx;
}

}  // namespace

cudaError_t kernel_image_status() {
  static const cudaError_t status = [] {
    const std::string list = GLM4_CUDA_ARCHITECTURES;  // as the binary was built: "75-real,...,90-virtual"
    std::size_t start = 0;
    while (start <= list.size()) {
      const std::size_t end = std::min(list.find(',', start), list.size());
      if (end > start && image_runs_on(list.substr(start, end - start), emulated_sm())) return cudaSuccess;
      start = end + 1;
    }
    return cudaErrorNoKernelImageForDevice;
  }();
  return status;
}

int emulated_sm() {
  static const int sm = parse_emulated_sm(std::getenv("GLM4_EMULATED_SM"));
  return sm;
}

bool in_device_allocation(const void* address, std::size_t bytes) {
  const runtime_state& s = state();
  const std::lock_guard lock(state().mutex);
  return inside_allocation(s, address, bytes);
}

}  // namespace glm4::emulated_cuda

using namespace glm4::emulated_cuda;

#define GLM4_EMULATED_CUDA_ERRORS(X)                                                                   \
  X(cudaSuccess, "no error")                                                                           \
  X(cudaErrorInvalidValue, "invalid argument")                                                         \
  X(cudaErrorMemoryAllocation, "out of memory")                                                        \
  X(cudaErrorInitializationError, "initialization error")                                              \
  X(cudaErrorInvalidConfiguration, "invalid configuration argument")                                   \
  X(cudaErrorInvalidPitchValue, "invalid pitch argument")                                              \
  X(cudaErrorInvalidDevicePointer, "invalid device pointer")                                           \
  X(cudaErrorInvalidMemcpyDirection, "invalid copy direction for memcpy")                              \
  X(cudaErrorInsufficientDriver, "CUDA driver version is insufficient for CUDA runtime version")       \
  X(cudaErrorInvalidDeviceFunction, "invalid device function")                                         \
  X(cudaErrorNoDevice, "no CUDA-capable device is detected")                                           \
  X(cudaErrorInvalidDevice, "invalid device ordinal")                                                  \
  X(cudaErrorInvalidKernelImage, "device kernel image is invalid")                                     \
  X(cudaErrorNoKernelImageForDevice, "no kernel image is available for execution on the device")       \
  X(cudaErrorPeerAccessUnsupported, "peer access is not supported between these two devices")          \
  X(cudaErrorInvalidResourceHandle, "invalid resource handle")                                         \
  X(cudaErrorIllegalState, "the operation cannot be performed in the present state")                   \
  X(cudaErrorNotReady, "device not ready")                                                             \
  X(cudaErrorIllegalAddress, "an illegal memory access was encountered")                               \
  X(cudaErrorLaunchOutOfResources, "too many resources requested for launch")                          \
  X(cudaErrorLaunchTimeout, "the launch timed out and was terminated")                                 \
  X(cudaErrorAssert, "device-side assert triggered")                                                   \
  X(cudaErrorMisalignedAddress, "misaligned address")                                                  \
  X(cudaErrorLaunchFailure, "unspecified launch failure")                                              \
  X(cudaErrorCooperativeLaunchTooLarge, "too many blocks in cooperative launch")                       \
  X(cudaErrorNotPermitted, "operation not permitted")                                                  \
  X(cudaErrorNotSupported, "operation not supported")                                                  \
  X(cudaErrorStreamCaptureUnsupported, "operation not permitted when stream is capturing")             \
  X(cudaErrorStreamCaptureInvalidated, "operation failed due to a previous error during capture")      \
  X(cudaErrorStreamCaptureUnmatched, "the capture was not initiated in this stream")                   \
  X(cudaErrorStreamCaptureImplicit,                                                                    \
    "operation would make the legacy stream depend on a capturing blocking stream")                    \
  X(cudaErrorStreamCaptureWrongThread, "attempt to terminate a thread-local capture sequence from another thread") \
  X(cudaErrorUnknown, "unknown error")

#define GLM4_ERROR_NAME(code, text) \
  case code: return #code;
#define GLM4_ERROR_TEXT(code, text) \
  case code: return text;

extern "C" {

cudaError_t cudaGetLastError(void) {
  const cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

// Codes this runtime does not know read as CUDA's own do.
const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    GLM4_EMULATED_CUDA_ERRORS(GLM4_ERROR_NAME)
    default: return "unrecognized error code";
  }
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    GLM4_EMULATED_CUDA_ERRORS(GLM4_ERROR_TEXT)
    default: return "unrecognized error code";
  }
}

cudaError_t cudaRuntimeGetVersion(int* runtimeVersion) {
  if (runtimeVersion == nullptr) return result(cudaErrorInvalidValue);
  *runtimeVersion = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* driverVersion) {
  if (driverVersion == nullptr) return result(cudaErrorInvalidValue);
  *driverVersion = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return result(cudaErrorInvalidValue);
  *count = emulated_gpu_count();
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= emulated_gpu_count()) return result(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return result(cudaErrorInvalidValue);
  *device = current_device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return result(cudaErrorInvalidValue);
  if (device < 0 || device >= emulated_gpu_count()) return result(cudaErrorInvalidDevice);
  const int sm = emulated_sm();
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "%s", "glm4 host emulation");
  prop->major = sm / 10;
  prop->minor = sm % 10;
  prop->multiProcessorCount = emulated_sm_count;
  prop->totalGlobalMem = device_memory_bytes;
  // No opt-in beyond 48 KiB: code that asks for more shared memory per block is asking too much here.
  prop->sharedMemPerBlock = 48 << 10;
  prop->sharedMemPerBlockOptin = 48 << 10;
  prop->sharedMemPerMultiprocessor = 64 << 10;
  prop->regsPerBlock = 65536;
  prop->regsPerMultiprocessor = 65536;
  prop->warpSize = 32;
  prop->memPitch = INT_MAX;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = INT_MAX;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->maxThreadsPerMultiProcessor = sm < 80 ? 1024 : 2048;
  prop->maxBlocksPerMultiProcessor = sm < 80 ? 16 : 32;
  prop->totalConstMem = 64 << 10;
  prop->textureAlignment = 512;
  prop->texturePitchAlignment = 32;
  prop->l2CacheSize = 4 << 20;
  prop->memoryBusWidth = 256;
  prop->concurrentKernels = 1;
  prop->asyncEngineCount = 2;
  prop->unifiedAddressing = 1;
  prop->managedMemory = 1;
  prop->streamPrioritiesSupported = 1;
  prop->globalL1CacheSupported = 1;
  prop->localL1CacheSupported = 1;
  prop->computePreemptionSupported = 1;
  prop->hostNumaId = -1;
  return cudaSuccess;
}

cudaError_t cudaDeviceCanAccessPeer(int* canAccessPeer, int device, int peerDevice) {
  if (canAccessPeer == nullptr) return result(cudaErrorInvalidValue);
  if (device < 0 || device >= emulated_gpu_count() || peerDevice < 0 || peerDevice >= emulated_gpu_count())
    return result(cudaErrorInvalidDevice);
  *canAccessPeer = 0;  // no peer access: a kernel touching another GPU's memory is a fault here
  return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func) {
  if (attr == nullptr) return result(cudaErrorInvalidValue);
  if (func == nullptr) return result(cudaErrorInvalidDeviceFunction);
  if (kernel_image_status() != cudaSuccess) return result(kernel_image_status());
  *attr = cudaFuncAttributes{};
  attr->maxThreadsPerBlock = 1024;
  attr->numRegs = 32;
  attr->maxDynamicSharedSizeBytes = 48 << 10;
  attr->binaryVersion = emulated_sm();
  attr->ptxVersion = emulated_sm();
  return cudaSuccess;
}

}  // extern "C"
