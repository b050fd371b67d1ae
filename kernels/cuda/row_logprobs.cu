#include "kernels/cuda/row_logprobs.cuh"

#include <cub/block/block_reduce.cuh>

#include <climits>

#include "kernels/cuda/block_reduce_ops.cuh"
#include "kernels/cuda/cuda_check.hpp"

namespace glm4::kernels::cuda {
namespace {

using namespace sampling_math;

constexpr int logprob_threads = 256;

struct ranked_first {
  __device__ ranked_candidate operator()(const ranked_candidate& a, const ranked_candidate& b) const {
    return ranks_before(b.value, b.id, a.value, a.id) ? b : a;
  }
};

struct logprob_shared {
  union {
    cub::BlockReduce<float, logprob_threads>::TempStorage floats;
    cub::BlockReduce<double, logprob_threads>::TempStorage doubles;
    cub::BlockReduce<ranked_candidate, logprob_threads>::TempStorage ranks;
  } cub;
  float best;
  double total;
  ranked_candidate winner;
};

// One block per request. The row's maximum and sum of exp(x - max) (in double) give the
// log-softmax; each thread keeps the `top` best of the ids it walks, in rank order, and `top`
// rounds of a block reduction over the threads' next entries merge those lists.
__global__ void __launch_bounds__(logprob_threads)
    row_logprobs_kernel(const float* logits, std::int64_t vocab, const logprob_request* requests, std::int32_t top,
                        float* chosen, ranked_logprob* ranked) {
  __shared__ logprob_shared s;
  const logprob_request request = requests[blockIdx.x];
  const float* row = logits + request.row * vocab;

  float mine = negative_infinity();
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float x = sanitized(row[i]);
    mine = x > mine ? x : mine;
  }
  using float_reduce = cub::BlockReduce<float, logprob_threads>;
  const float best = broadcast_from_first(&s.best, float_reduce(s.cub.floats).Reduce(mine, max_of_floats{}));
  double part = 0.0;
  if (best != negative_infinity())
    for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x) part += weight_of(sanitized(row[i]), best);
  const double total =
      broadcast_from_first(&s.total, cub::BlockReduce<double, logprob_threads>(s.cub.doubles).Sum(part));
  const double log_total = log(total);
  if (threadIdx.x == 0) chosen[blockIdx.x] = logprob_of(sanitized(row[request.chosen]), best, log_total);

  ranked_candidate list[max_ranked_logprobs];
  std::int32_t count = 0;
  for (std::int64_t i = threadIdx.x; i < vocab; i += blockDim.x)
    offer_to_ranking(list, count, top, {sanitized(row[i]), static_cast<std::int32_t>(i)});
  int head = 0;
  for (int r = 0; r < top; ++r) {
    // An exhausted list offers what every real token ranks before (top <= vocab: enough are real).
    const ranked_candidate offer = head < count ? list[head] : ranked_candidate{negative_infinity(), INT_MAX};
    const ranked_candidate winner = broadcast_from_first(
        &s.winner, cub::BlockReduce<ranked_candidate, logprob_threads>(s.cub.ranks).Reduce(offer, ranked_first{}));
    if (head < count && list[head].id == winner.id) ++head;
    if (threadIdx.x == 0) ranked[blockIdx.x * top + r] = {winner.id, logprob_of(winner.value, best, log_total)};
  }
}

}  // namespace

void launch_row_logprobs(const float* logits, std::int64_t vocab, const logprob_request* requests,
                         std::int64_t num_requests, std::int32_t top, float* chosen, ranked_logprob* ranked,
                         cudaStream_t stream) {
  if (num_requests == 0) return;
  row_logprobs_kernel<<<static_cast<unsigned>(num_requests), logprob_threads, 0, stream>>>(logits, vocab, requests, top,
                                                                                           chosen, ranked);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace glm4::kernels::cuda
