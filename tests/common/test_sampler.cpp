// The sampler: greedy, seeded reproducibility, and each filter's effect.
#include "torch_doctest.hpp"

#include <set>

#include "common/sampler.hpp"

using namespace duet;

namespace {
torch::Tensor logits_of(std::vector<float> v) { return torch::tensor(v); }
}  // namespace

TEST_CASE("greedy picks the argmax") {
  Sampler s(SamplingOptions{});
  CHECK(s.next(logits_of({0.1f, 3.0f, -1.0f, 2.9f}), {}) == 1);
}

TEST_CASE("the same seed gives the same draws; another seed differs") {
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 42;
  auto logits = torch::randn({50}, torch::TensorOptions().dtype(torch::kFloat));
  auto draw = [&](uint64_t seed) {
    o.seed = seed;
    Sampler s(o);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.next(logits, {}));
    return out;
  };
  CHECK(draw(42) == draw(42));
  CHECK(draw(42) != draw(43));
}

TEST_CASE("top_k = 1 is greedy; top_k = 2 only ever picks the two best") {
  SamplingOptions o;
  o.temperature = 1.5;
  o.top_k = 1;
  Sampler s1(o);
  auto logits = logits_of({0.0f, 1.0f, 0.5f, 0.9f});
  for (int i = 0; i < 20; ++i) CHECK(s1.next(logits, {}) == 1);
  o.top_k = 2;
  Sampler s2(o);
  std::set<int32_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(s2.next(logits, {}));
  CHECK(seen == std::set<int32_t>{1, 3});
}

TEST_CASE("top_p keeps the smallest set reaching the mass") {
  SamplingOptions o;
  o.temperature = 1.0;
  o.top_p = 0.5;
  // probabilities ~ 0.64, 0.24, 0.09, 0.03: top_p 0.5 keeps only the first
  auto logits = logits_of({3.0f, 2.0f, 1.0f, 0.0f});
  Sampler s(o);
  for (int i = 0; i < 50; ++i) CHECK(s.next(logits, {}) == 0);
  o.top_p = 0.8;  // keeps two
  Sampler s2(o);
  std::set<int32_t> seen;
  for (int i = 0; i < 300; ++i) seen.insert(s2.next(logits, {}));
  CHECK(seen == std::set<int32_t>{0, 1});
}

TEST_CASE("repetition penalty demotes tokens already seen") {
  SamplingOptions o;
  o.repetition_penalty = 2.0;  // greedy with penalty
  Sampler s(o);
  auto logits = logits_of({2.0f, 1.5f, -1.0f});
  CHECK(s.next(logits, {}) == 0);
  CHECK(s.next(logits, {0}) == 1);  // 2.0 / 2 = 1.0 < 1.5
}

TEST_CASE("invalid options are refused") {
  SamplingOptions o;
  o.top_p = 0.0;
  CHECK_THROWS_AS(Sampler{o}, std::invalid_argument);
}
