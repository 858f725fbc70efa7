// The device sampler against Sampler, token for token: random logits of random vocabulary sizes
// (fp32 and bf16, with -inf entries, ties, -0.0 and underflowing tails) under every combination
// of temperature, its order, top-k and top-p, over several seeds; and the host's random stream
// after a run is where Sampler::next leaves it for the picks kept. On CPU tensors, and on CUDA
// where there is a device (there exp, pow and the sums' order round their own way).
#include "torch_doctest.hpp"

#include <cmath>
#include <limits>
#include <random>

#include "common/device_sampler.hpp"
#include "common/sampler.hpp"

using namespace duet;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// One of several shapes of logits, so that each rule meets the case it is for.
torch::Tensor random_logits(std::mt19937_64& g, int64_t vocab, torch::Dtype dtype) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int kind = static_cast<int>(g() % 5);
  std::vector<float> v(static_cast<size_t>(vocab));
  for (float& x : v) {
    x = normal(g);
    if (kind == 1) x = std::round(x * 2.0f) / 2.0f;  // coarse grid: many ties
    if (kind == 2) x = std::round(x) == 0.0f ? (unit(g) < 0.5 ? -0.0f : 0.0f) : std::round(x);  // -0.0 next to 0.0
    if (kind == 3 && unit(g) < 0.3) x = -900.0f - 500.0f * static_cast<float>(unit(g));  // exp underflows to 0
    if (kind == 4 && unit(g) < 0.5) x = kNegInf;  // a logits processor's bans
  }
  if (kind == 4) v[g() % v.size()] = 1.0f;  // at least one token left
  return torch::tensor(v).to(dtype);
}

struct Case {
  double temperature;
  bool temperature_last;
  int64_t top_k;
  double top_p;
  uint64_t seed;
};

// One run of `n` picks, `used` of them kept, against Sampler::next on copies of the same stream.
void check_run(Sampler& host, Sampler& followed, DeviceSampler& dev, std::mt19937_64& g, int64_t n, int64_t used) {
  std::vector<torch::Tensor> logits;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t vocab = 1 + static_cast<int64_t>(g() % 300);
    logits.push_back(random_logits(g, vocab, g() % 2 ? torch::kFloat : torch::kBFloat16).to(dev.device()));
  }
  dev.start(n);
  std::vector<torch::Tensor> picked;
  for (const auto& l : logits) picked.push_back(dev.pick(l));
  const auto ids = dev.finish();
  REQUIRE(ids.size() == static_cast<size_t>(n));
  Sampler all = host;  // draws every pick of the run
  for (int64_t i = 0; i < n; ++i) {
    CAPTURE(i);
    CAPTURE(logits[static_cast<size_t>(i)]);
    const int32_t want = all.next(logits[static_cast<size_t>(i)], {});
    CHECK(ids[static_cast<size_t>(i)] == want);
    CHECK(picked[static_cast<size_t>(i)].item<int64_t>() == want);  // the device tensor says the same
    if (i < used) host.next(logits[static_cast<size_t>(i)], {});
  }
  dev.keep(used);
  CHECK(followed.uniform() == host.uniform());  // the stream moved past exactly `used` draws
}

// every combination of the options, 3 runs each
int64_t check_grid(c10::Device device) {
  std::vector<Case> cases;
  for (double t : {0.0, 0.6, 1.0, 1.7})
    for (bool last : {false, true})
      for (int64_t k : {0, 1, 3, 50})
        for (double p : {1.0, 0.95, 0.6, 0.2})
          for (uint64_t seed : {1u, 2u, 3u}) cases.push_back({t, last, k, p, seed});
  int64_t picks = 0;
  for (const auto& c : cases) {
    CAPTURE(c.temperature);
    CAPTURE(c.temperature_last);
    CAPTURE(c.top_k);
    CAPTURE(c.top_p);
    CAPTURE(c.seed);
    SamplingOptions o;
    o.temperature = c.temperature;
    o.temperature_last = c.temperature_last;
    o.top_k = c.top_k;
    o.top_p = c.top_p;
    o.seed = c.seed;
    Sampler host(o), followed(o);
    DeviceSampler dev(followed, device);
    std::mt19937_64 g(c.seed * 7919 + static_cast<uint64_t>(c.top_k));
    for (int run = 0; run < 3; ++run) {
      const int64_t n = 1 + static_cast<int64_t>(g() % 16);
      const int64_t used = static_cast<int64_t>(g() % static_cast<uint64_t>(n + 1));  // 0..n
      check_run(host, followed, dev, g, n, used);
      picks += n;
    }
  }
  return picks;
}

}  // namespace

TEST_CASE("the device sampler picks Sampler's tokens and leaves its stream where Sampler::next does") {
  MESSAGE(check_grid(torch::kCPU) << " picks compared");
}

TEST_CASE("on CUDA: the device sampler picks Sampler's tokens and leaves its stream where Sampler::next does") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  MESSAGE(check_grid(torch::Device(torch::kCUDA, 0)) << " picks compared");
}

TEST_CASE("the device sampler follows the host where every probability underflows under the temperature") {
  // NotaGen's order at T = 0.002: p^(1/T) is 0 for every kept token, the host's sums are NaN and
  // its draw falls through to the last kept token; the device must do the same
  SamplingOptions o;
  o.temperature = 0.002;
  o.temperature_last = true;
  for (int64_t k : {0, 5}) {
    CAPTURE(k);
    o.top_k = k;
    Sampler host(o), followed(o);
    DeviceSampler dev(followed, torch::kCPU);
    std::mt19937_64 g(11);
    for (int run = 0; run < 4; ++run) check_run(host, followed, dev, g, 8, 8);
  }
}

TEST_CASE("the device sampler: nothing to sample is refused only for a pick that is kept") {
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 4;
  Sampler host(o), followed(o);
  DeviceSampler dev(followed, torch::kCPU);
  const auto banned = torch::full({8}, kNegInf);
  CHECK_THROWS_AS(host.next(banned, {}), std::invalid_argument);
  dev.start(3);
  dev.pick(torch::tensor({1.0f, 2.0f}));
  dev.pick(banned);
  dev.pick(torch::tensor({0.5f}));
  const auto ids = dev.finish();
  CHECK(ids[1] == -1);
  CHECK_THROWS_WITH_AS(dev.keep(2), doctest::Contains("-inf"), std::invalid_argument);
  dev.start(2);
  dev.pick(torch::tensor({1.0f, 2.0f}));
  dev.pick(banned);
  dev.finish();
  dev.keep(1);  // the banned pick fell after the kept one (NotaGen: after the EOS character)
  host.uniform();
  CHECK(followed.uniform() == host.uniform());
}

TEST_CASE("the device sampler refuses what it cannot follow") {
  SamplingOptions o;
  o.temperature = 1.0;
  o.repetition_penalty = 1.3;
  Sampler penalised(o);
  CHECK_FALSE(DeviceSampler::follows(o));
  CHECK_THROWS_AS(DeviceSampler(penalised, torch::kCPU), std::invalid_argument);
  o.repetition_penalty = 1.0;
  Sampler s(o);
  DeviceSampler dev(s, torch::kCPU);
  dev.start(1);
  CHECK_THROWS_AS(dev.pick(torch::zeros({2, 4})), std::invalid_argument);
  dev.pick(torch::zeros({4}));
  CHECK_THROWS_AS(dev.pick(torch::zeros({4})), std::logic_error);  // a run of 1
  dev.finish();
  CHECK_THROWS_AS(dev.keep(2), std::logic_error);
}
