#pragma once
// A drafter for tests: k random ids a round, so nearly every draft is rejected and every round
// rewinds the KV (the hardest case for speculative decoding's bookkeeping).
#include <random>
#include <string>
#include <vector>

#include "common/speculative.hpp"

namespace duet::test {

class RandomDrafter final : public Drafter {
 public:
  RandomDrafter(int32_t vocab, uint64_t seed) : vocab_(vocab), rng_(seed) {}
  DraftProposal propose(const std::vector<int32_t>&, int k) override {
    DraftProposal p;
    for (int i = 0; i < k; ++i) p.tokens.push_back(int32_t(rng_() % uint64_t(vocab_)));
    return p;
  }
  std::string name() const override { return "random"; }

 private:
  int32_t vocab_;
  std::mt19937_64 rng_;
};

}  // namespace duet::test
