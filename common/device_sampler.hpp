#pragma once
// Sampler's draws where the logits are. A run of up to n tokens (NotaGen: one patch's 16
// characters) costs one host->device copy of n uniforms before it and one copy of the ids after
// it, instead of a device->host sync per token; each id stays a device tensor, so the next step
// can be queued before the GPU has picked it.
//
// A seed gives Sampler's tokens: the same rules as Sampler::distribution and Sampler::draw
// (temperature first or last, descending order with ties by id, -inf never kept, top-k, top-p's
// smallest prefix, renormalise, the first running sum above u, else the last kept token) as
// float64 tensor ops, and the uniforms are the host Sampler's own: peeked before the run,
// consumed after it for the tokens kept. What may round differently from the host is exp, pow and
// the order of the sums' additions, a few ulp of float64: a token differs only where a uniform
// or top_p lies that close to a boundary (~1e-15 per token). float32 would not do: its 1e-7
// would change about one character in a million.
//
// No repetition penalty (it needs the history on the host): follows() says so; use Sampler.
// Takes tensors, so it needs torch/types.h (the light header, as sampler.hpp).
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "common/sampler.hpp"

namespace duet {

class DeviceSampler {
 public:
  // host: the sampler whose options and random stream this follows; it must outlive this.
  // Throws std::invalid_argument for options it cannot follow.
  DeviceSampler(Sampler& host, c10::Device device);
  static bool follows(const SamplingOptions& o) { return o.repetition_penalty == 1.0; }

  // Starts a run of at most n picks: n uniforms peeked from the host's stream (none if greedy),
  // one copy to the device.
  void start(int64_t n);
  // The run's next token from logits [vocab] (any float dtype, on the device): id [] int64
  // on the device. Queues work only: no sync.
  torch::Tensor pick(const torch::Tensor& logits);
  // Ends the run: its ids in one copy to the host (the run's only sync); -1 for a pick whose
  // logits were all -inf (nothing to sample: keep() refuses it if it is kept).
  std::vector<int32_t> finish();
  // The run's first `used` picks are kept: the host's stream moves past exactly their uniforms,
  // where Sampler::next would have left it. Throws std::invalid_argument for a kept pick with
  // nothing to sample (Sampler's sentence).
  void keep(int64_t used);

  c10::Device device() const { return device_; }

 private:
  torch::Tensor draw(const torch::Tensor& logits, const torch::Tensor& u);  // one pick, not greedy
  void fit_vocab(int64_t vocab);

  Sampler& host_;
  SamplingOptions opts_;
  c10::Device device_;
  torch::Tensor zero_, temperature_;    // [] float64 on the device (device divisors divide exactly)
  torch::Tensor rank_, in_top_k_;       // [vocab] int64 0..vocab-1, [vocab] bool rank < top_k
  torch::Tensor uniforms_;              // [n] float64 on the device: this run's
  std::vector<torch::Tensor> ids_, tops_;  // per pick: id [], the largest logit [] (-inf: none)
  std::vector<int32_t> finished_;       // the run's ids on the host, after finish()
  int64_t run_ = 0;                     // picks this run may take
};

}  // namespace duet
