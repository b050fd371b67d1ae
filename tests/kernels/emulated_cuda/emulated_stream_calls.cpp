// Streams, stream capture and graphs of the emulated CUDA runtime.
#include <cuda_runtime.h>

#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "tests/kernels/emulated_cuda/emulated_runtime_state.hpp"

using namespace glm4::emulated_cuda;

extern "C" {

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* pStream, unsigned int flags) {
  if (pStream == nullptr || (flags & ~static_cast<unsigned>(cudaStreamNonBlocking)) != 0)
    return result(cudaErrorInvalidValue);
  auto* stream = new CUstream_st;
  stream->flags = flags;
  stream->device = current_device;
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  s.streams.insert(stream);
  *pStream = stream;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  if (is_default_stream(stream) || s.streams.erase(stream) == 0) return result(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}

// Work runs when it is submitted, so there is nothing to wait for; but a capturing stream cannot
// be waited on, and asking invalidates its capture.
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  if (!known_stream(s, stream)) return result(cudaErrorInvalidResourceHandle);
  if (is_default_stream(stream) || stream->capture == cudaStreamCaptureStatusNone) return cudaSuccess;
  stream->capture = cudaStreamCaptureStatusInvalidated;
  return result(cudaErrorStreamCaptureUnsupported);
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return result(cudaErrorInvalidValue);
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  if (!known_stream(s, stream)) return result(cudaErrorInvalidResourceHandle);
  if (is_default_stream(stream)) return result(cudaErrorStreamCaptureUnsupported);
  if (stream->capture != cudaStreamCaptureStatusNone) return result(cudaErrorIllegalState);
  stream->capture = cudaStreamCaptureStatusActive;
  stream->mode = mode;
  stream->capturing_thread = std::this_thread::get_id();
  stream->recorded.clear();
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* pCaptureStatus) {
  if (pCaptureStatus == nullptr) return result(cudaErrorInvalidValue);
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  if (!known_stream(s, stream)) return result(cudaErrorInvalidResourceHandle);
  if (is_legacy_stream(stream) && breaks_blocking_capture(s)) return result(cudaErrorStreamCaptureImplicit);
  *pCaptureStatus = is_default_stream(stream) ? cudaStreamCaptureStatusNone : stream->capture;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* pGraph) {
  if (pGraph == nullptr) return result(cudaErrorInvalidValue);
  runtime_state& s = state();
  const std::lock_guard lock(s.mutex);
  if (!known_stream(s, stream)) return result(cudaErrorInvalidResourceHandle);
  if (is_default_stream(stream) || stream->capture == cudaStreamCaptureStatusNone) return result(cudaErrorIllegalState);
  if (stream->mode != cudaStreamCaptureModeRelaxed && stream->capturing_thread != std::this_thread::get_id())
    return result(cudaErrorStreamCaptureWrongThread);
  const bool invalidated = stream->capture == cudaStreamCaptureStatusInvalidated;
  stream->capture = cudaStreamCaptureStatusNone;
  work_list recorded = std::move(stream->recorded);
  stream->recorded.clear();
  if (invalidated) {
    *pGraph = nullptr;
    return result(cudaErrorStreamCaptureInvalidated);
  }
  *pGraph = new CUgraph_st{std::move(recorded)};
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* pGraphExec, cudaGraph_t graph, unsigned long long /*flags*/) {
  if (pGraphExec == nullptr || graph == nullptr) return result(cudaErrorInvalidValue);
  *pGraphExec = new CUgraphExec_st{graph->work};
  return cudaSuccess;
}

// Into a capturing stream the graph's work is captured in turn, as CUDA nests a child graph.
cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream) {
  if (graphExec == nullptr) return result(cudaErrorInvalidValue);
  for (const auto& work : graphExec->work) {
    std::function<void()> copy = work;
    if (const cudaError_t error = submit(stream, copy); error != cudaSuccess) return result(error);
  }
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec) {
  if (graphExec == nullptr) return result(cudaErrorInvalidValue);
  delete graphExec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (graph == nullptr) return result(cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}

}  // extern "C"
