#pragma once
// Picks the next token from logits. Sampling draws from its own std::mt19937_64 on the CPU, so a
// seed gives the same tokens on any device and any LibTorch version, split or monolithic.
#include <torch/types.h>

#include <random>
#include <vector>

#include "common/sampling_options.hpp"

namespace duet {

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& opts);
  // logits [vocab] (any device, fp32); history = every id so far (prompt + generated)
  int32_t next(const torch::Tensor& logits, const std::vector<int32_t>& history);

 private:
  SamplingOptions opts_;
  std::mt19937_64 rng_;
};

}  // namespace duet
