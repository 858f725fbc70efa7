#include "common/sampler.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <unordered_set>

namespace duet {

double TokenDistribution::prob_of(int32_t id) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) return probs[i];
  return 0.0;
}

Sampler::Sampler(const SamplingOptions& opts) : opts_(opts), rng_(opts.seed) {
  if (opts.top_p <= 0.0 || opts.top_p > 1.0) throw std::invalid_argument("top_p must be in (0, 1]");
  if (opts.top_k < 0) throw std::invalid_argument("top_k must be >= 0");
  if (opts.repetition_penalty <= 0.0) throw std::invalid_argument("repetition_penalty must be > 0");
}

int32_t Sampler::next(const torch::Tensor& logits_in, const std::vector<int32_t>& history) {
  if (opts_.greedy() && opts_.repetition_penalty == 1.0)  // fast path: argmax where the logits are
    return static_cast<int32_t>(logits_in.argmax().item<int64_t>());
  return draw(distribution(logits_in, history));
}

TokenDistribution Sampler::distribution(const torch::Tensor& logits_in, const std::vector<int32_t>& history) const {
  if (opts_.greedy() && opts_.repetition_penalty == 1.0)
    return TokenDistribution::point(static_cast<int32_t>(logits_in.argmax().item<int64_t>()));

  auto cpu = logits_in.to(torch::kCPU, torch::kDouble).contiguous();
  std::vector<double> z(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
  const int64_t vocab = static_cast<int64_t>(z.size());
  if (opts_.repetition_penalty != 1.0) {
    std::unordered_set<int32_t> seen(history.begin(), history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= vocab) continue;
      z[id] = z[id] < 0 ? z[id] * opts_.repetition_penalty : z[id] / opts_.repetition_penalty;
    }
  }
  if (opts_.greedy())
    return TokenDistribution::point(static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin()));

  if (!opts_.temperature_last)
    for (double& v : z) v /= opts_.temperature;
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  // descending by logit, ties by id: a total order, so the kept set never depends on sort details
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return z[a] != z[b] ? z[a] > z[b] : a < b; });
  // tokens a logits processor forbade (-inf) are never kept: sampling is exact over the rest
  size_t keep = static_cast<size_t>(std::count_if(z.begin(), z.end(), [](double v) { return v != -INFINITY; }));
  if (keep == 0) throw std::invalid_argument("every token's logit is -inf: nothing can be sampled");
  if (opts_.top_k > 0) keep = std::min<size_t>(keep, static_cast<size_t>(opts_.top_k));
  const double zmax = z[order[0]];
  std::vector<double> p(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += (p[i] = std::exp(z[order[i]] - zmax));
  for (double& v : p) v /= sum;
  if (opts_.top_p < 1.0) {  // smallest prefix whose mass reaches top_p
    double cum = 0;
    size_t k = 0;
    while (k < keep) {
      cum += p[k++];
      if (cum >= opts_.top_p) break;
    }
    keep = k;
    double s = std::accumulate(p.begin(), p.begin() + keep, 0.0);
    for (size_t i = 0; i < keep; ++i) p[i] /= s;
  }
  if (opts_.temperature_last && opts_.temperature != 1.0) {  // NotaGen's order: truncate, then temperature
    double s = 0;
    for (size_t i = 0; i < keep; ++i) s += (p[i] = std::pow(p[i], 1.0 / opts_.temperature));
    for (size_t i = 0; i < keep; ++i) p[i] /= s;
  }
  // tokens whose probability underflowed to 0 are left out: a distribution's probs are > 0
  while (keep > 1 && p[keep - 1] <= 0.0) --keep;
  TokenDistribution d;
  d.ids.assign(order.begin(), order.begin() + keep);
  d.probs.assign(p.begin(), p.begin() + keep);
  return d;
}

int32_t Sampler::draw(const TokenDistribution& d) {
  if (opts_.greedy()) return d.ids.front();  // greedy never draws
  const double u = uniform();  // drawn even for one id: a seed's stream is what it always was
  double cum = 0;
  for (size_t i = 0; i < d.ids.size(); ++i) {
    cum += d.probs[i];
    if (u < cum) return d.ids[i];
  }
  return d.ids.back();
}

namespace {
double uniform_of(std::mt19937_64& rng) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }
}  // namespace

double Sampler::uniform() { return uniform_of(rng_); }

std::vector<double> Sampler::peek_uniforms(size_t n) const {
  auto rng = rng_;  // a copy of the engine's state: this stream's next n values
  std::vector<double> u(n);
  for (double& v : u) v = uniform_of(rng);
  return u;
}

}  // namespace duet
