// The emulated NCCL's collective, send and receive calls: their checks, then their work on the rank's stream.
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "tests/kernels/emulated_cuda/emulated_cuda.hpp"
#include "tests/kernels/emulated_cuda/emulated_nccl_groups.hpp"
#include "tests/kernels/emulated_cuda/emulated_nccl_meetings.hpp"
#include "tests/kernels/emulated_cuda/emulated_nccl_types.hpp"

namespace glm4::emulated_cuda::nccl {
namespace {

ncclResult_t start_collective(const ncclComm* comm, const collective_call& call, cudaStream_t stream) {
  const std::string name = kind_name(call.kind);
  if (const ncclResult_t status = usable(comm, name.c_str()); status != ncclSuccess) return status;
  if (const ncclResult_t status = known_type(call.type, name); status != ncclSuccess) return status;
  const int nranks = comm->members->nranks;
  if (reduces(call.kind)) {
    if (call.op < 0 || call.op >= ncclNumOps)
      return refuse(ncclInvalidArgument, name + ": op " + std::to_string(call.op) +
                                             " is not a built-in one (ncclRedOpCreatePreMulSum is not emulated)");
    if ((call.type == ncclFloat8e4m3 || call.type == ncclFloat8e5m2) && emulated_sm() < 90)
      return refuse(ncclInvalidArgument,
                    name + ": reductions of " + nccl_types::type_name(call.type) + " need sm_90 or newer");
  }
  if (rooted(call.kind) && (call.root < 0 || call.root >= nranks))
    return refuse(ncclInvalidArgument,
                  name + ": root " + std::to_string(call.root) + " is not a rank of " + std::to_string(nranks));
  const bool root = call.root == comm->rank;
  const bool needs_send = call.kind != collective_kind::broadcast || root;
  const bool needs_recv = call.kind != collective_kind::reduce || root;
  if (call.count > 0 && ((needs_send && call.send == nullptr) || (needs_recv && call.recv == nullptr)))
    return refuse(ncclInvalidArgument,
                  name + ": " + (needs_send && call.send == nullptr ? "sendbuff" : "recvbuff") + " is NULL");
  if (const ncclResult_t status = stream_of_rank(*comm, stream, name); status != ncclSuccess) return status;
  if (call.count == 0) return ncclSuccess;  // NCCL drops empty collectives
  return issue(name.c_str(), stream, collective_exchange(*comm, call));
}

ncclResult_t start_p2p(const ncclComm* comm, bool sending, const void* data, std::size_t count, ncclDataType_t type,
                       int peer, cudaStream_t stream) {
  const std::string name = sending ? "ncclSend" : "ncclRecv";
  if (const ncclResult_t status = usable(comm, name.c_str()); status != ncclSuccess) return status;
  if (const ncclResult_t status = known_type(type, name); status != ncclSuccess) return status;
  if (peer < 0 || peer >= comm->members->nranks)
    return refuse(ncclInvalidArgument, name + ": peer " + std::to_string(peer) + " is not a rank of " +
                                           std::to_string(comm->members->nranks));
  if (count > 0 && data == nullptr) return refuse(ncclInvalidArgument, name + ": the buffer is NULL");
  if (const ncclResult_t status = stream_of_rank(*comm, stream, name); status != ncclSuccess) return status;
  return issue(name.c_str(), stream, p2p_exchange(*comm, sending, peer, data, count, type));
}

}  // namespace
}  // namespace glm4::emulated_cuda::nccl

using namespace glm4::emulated_cuda::nccl;

extern "C" {

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  return noted(
      start_collective(comm, {collective_kind::all_reduce, count, datatype, op, 0, sendbuff, recvbuff}, stream));
}

ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  return noted(start_collective(
      comm, {collective_kind::all_gather, sendcount, datatype, ncclSum, 0, sendbuff, recvbuff}, stream));
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  return noted(
      start_collective(comm, {collective_kind::broadcast, count, datatype, ncclSum, root, sendbuff, recvbuff}, stream));
}

ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream) {
  return ncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                        int root, ncclComm_t comm, cudaStream_t stream) {
  return noted(
      start_collective(comm, {collective_kind::reduce, count, datatype, op, root, sendbuff, recvbuff}, stream));
}

ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  return noted(start_collective(comm, {collective_kind::reduce_scatter, recvcount, datatype, op, 0, sendbuff, recvbuff},
                                stream));
}

ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return noted(start_p2p(comm, true, sendbuff, count, datatype, peer, stream));
}

ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return noted(start_p2p(comm, false, recvbuff, count, datatype, peer, stream));
}

}  // extern "C"
