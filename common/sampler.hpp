#pragma once
// Picks the next token from logits. Sampling draws from its own std::mt19937_64 on the CPU, so a
// seed gives the same tokens on any device and any LibTorch version, split or monolithic.
//
// The sampler's final distribution (repetition penalty, temperature, top-k, top-p applied) is
// available as a TokenDistribution: speculative decoding verifies drafts against exactly it.
#include <torch/types.h>

#include <random>
#include <vector>

#include "common/sampling_options.hpp"

namespace duet {

// A distribution over a few token ids: ids distinct, probs > 0 summing to 1, in the sampler's
// order (descending probability, ties by id). Greedy: one id with probability 1.
struct TokenDistribution {
  std::vector<int32_t> ids;
  std::vector<double> probs;
  double prob_of(int32_t id) const;  // 0 for ids not in the support
  static TokenDistribution point(int32_t id) { return {{id}, {1.0}}; }
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& opts);
  // logits [vocab] (any device, fp32); history = every id so far (prompt + generated)
  int32_t next(const torch::Tensor& logits, const std::vector<int32_t>& history);

  // The distribution next() draws from (no randomness used).
  TokenDistribution distribution(const torch::Tensor& logits, const std::vector<int32_t>& history) const;
  // One draw from d with this sampler's generator (next() == draw(distribution())).
  int32_t draw(const TokenDistribution& d);
  double uniform();  // U[0, 1) from the same generator (speculative acceptance tests)
  // The next n values uniform() will return, without using them up (DeviceSampler takes a run's
  // uniforms ahead, then calls uniform() once per token it kept).
  std::vector<double> peek_uniforms(size_t n) const;
  const SamplingOptions& options() const { return opts_; }

 private:
  SamplingOptions opts_;
  std::mt19937_64 rng_;
};

}  // namespace duet
