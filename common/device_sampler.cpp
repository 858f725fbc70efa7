#include "common/device_sampler.hpp"

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace duet {

namespace {

// The total of a [n] tensor as its running sum's last element: the host adds in index order,
// and so does a CPU cumsum (a GPU scan groups the additions differently: an ulp or so).
torch::Tensor total(const torch::Tensor& v) { return v.cumsum(0)[v.size(0) - 1]; }

}  // namespace

DeviceSampler::DeviceSampler(Sampler& host, c10::Device device)
    // "cuda" as tensors name it ("cuda:0"), so a logits tensor's device compares equal
    : host_(host), opts_(host.options()), device_(torch::empty({0}, torch::TensorOptions().device(device)).device()) {
  if (!follows(opts_))
    throw std::invalid_argument("the device sampler cannot apply a repetition penalty (it needs the history on the "
                                "host): sample on the host");
  const auto f64 = torch::TensorOptions().dtype(torch::kDouble).device(device_);
  zero_ = torch::zeros({}, f64);
  if (!opts_.greedy()) temperature_ = torch::full({}, opts_.temperature, f64);
}

void DeviceSampler::fit_vocab(int64_t vocab) {
  if (rank_.defined() && rank_.size(0) == vocab) return;
  rank_ = torch::arange(vocab, torch::TensorOptions().dtype(torch::kLong).device(device_));
  if (opts_.top_k > 0) in_top_k_ = rank_ < opts_.top_k;
}

void DeviceSampler::start(int64_t n) {
  if (n < 0) throw std::invalid_argument("a device sampler run of " + std::to_string(n) + " picks");
  ids_.clear();
  tops_.clear();
  finished_.clear();
  run_ = n;
  if (opts_.greedy() || n == 0) return;  // greedy never draws
  const auto u = host_.peek_uniforms(static_cast<size_t>(n));
  // pinned, so the copy is queued like the attention indices' (the caching host allocator keeps
  // the buffer until the copy is done)
  auto staged = torch::empty({n}, torch::TensorOptions().dtype(torch::kDouble).pinned_memory(device_.is_cuda()));
  std::memcpy(staged.data_ptr<double>(), u.data(), u.size() * sizeof(double));
  uniforms_ = staged.to(device_, torch::kDouble, /*non_blocking=*/true);
}

torch::Tensor DeviceSampler::pick(const torch::Tensor& logits) {
  if (static_cast<int64_t>(ids_.size()) >= run_)
    throw std::logic_error("device sampler: pick " + std::to_string(ids_.size() + 1) + " of a run started for " +
                           std::to_string(run_));
  if (logits.dim() != 1 || logits.size(0) < 1 || logits.device() != device_)
    throw std::invalid_argument("device sampler: logits must be [vocab] on " + device_.str() + ", got " +
                                c10::str(logits.sizes()) + " on " + logits.device().str());
  torch::NoGradGuard no_grad;
  auto id = opts_.greedy() ? logits.argmax() : draw(logits, uniforms_[static_cast<int64_t>(ids_.size())]);
  ids_.push_back(id);
  return id;
}

// Sampler::distribution then Sampler::draw over the whole vocabulary in sorted order, with masks
// where the host slices: tokens past the kept prefix get probability 0.
torch::Tensor DeviceSampler::draw(const torch::Tensor& logits, const torch::Tensor& u) {
  const int64_t V = logits.size(0);
  fit_vocab(V);
  auto z = torch::empty({V}, zero_.options());  // [V] float64
  // + 0 turns -0.0 into +0.0: the host's comparisons tie them, a radix sort would not
  torch::add_out(z, logits, zero_);
  if (!opts_.temperature_last && opts_.temperature != 1.0) z = z / temperature_;
  // descending, ties by id (a stable sort keeps the ids' order); -inf sorts last
  const auto sorted = torch::sort(z, /*stable=*/true, /*dim=*/0, /*descending=*/true);
  const auto& s = std::get<0>(sorted);
  const auto& order = std::get<1>(sorted);
  const auto top = s[0];
  tops_.push_back(top);  // -inf: nothing to sample, told at finish()
  auto kept = s != -INFINITY;  // [V] bool, a prefix
  if (opts_.top_k > 0) kept = kept & in_top_k_;
  auto p = (s - top).exp() * kept;
  p = p / total(p);
  if (opts_.top_p < 1.0) {  // the smallest prefix whose mass reaches top_p
    const auto below = ((p.cumsum(0) < opts_.top_p) & kept).sum();  // kept tokens before it is reached
    kept = kept & (rank_ <= below);                                    // and the one that reaches it
    p = p * kept;
    p = p / total(p);
  }
  if (opts_.temperature_last && opts_.temperature != 1.0) {  // NotaGen's order: truncate, then temperature
    p = p.pow(1.0 / opts_.temperature);
    p = p / total(p);
  }
  // The last kept token is the last whose probability is not <= 0 (the host drops underflowed
  // tails; NaN, when every probability underflowed under the temperature, drops none).
  // kept > (p <= 0) is kept && !(p <= 0) on bools.
  const auto last = (kept.narrow(0, 1, V - 1) > (p.narrow(0, 1, V - 1) <= 0)).sum();
  // The first i with u < cum: the running sum never decreases, so the ones above u are a suffix
  // (none if NaN: then the last kept, as the host's loop falls through).
  const auto i = torch::minimum(V - (p.cumsum(0) > u).sum(), last);
  return order.gather(0, i.view({1})).squeeze(0);  // [] int64
}

std::vector<int32_t> DeviceSampler::finish() {
  torch::NoGradGuard no_grad;
  finished_.clear();
  if (ids_.empty()) return finished_;
  auto ids = torch::stack(ids_);  // [n] int64
  if (!opts_.greedy()) ids = ids.masked_fill(torch::stack(tops_) == -INFINITY, -1);
  ids = ids.to(torch::kCPU);  // the run's one device->host copy
  const auto* v = ids.data_ptr<int64_t>();
  finished_.assign(v, v + ids.size(0));
  ids_.clear();
  tops_.clear();
  return finished_;
}

void DeviceSampler::keep(int64_t used) {
  if (used < 0 || used > static_cast<int64_t>(finished_.size()))
    throw std::logic_error("device sampler: keep(" + std::to_string(used) + ") after a run of " +
                           std::to_string(finished_.size()) + " finished picks");
  for (int64_t k = 0; k < used; ++k)
    if (finished_[static_cast<size_t>(k)] < 0)
      throw std::invalid_argument("every token's logit is -inf: nothing can be sampled");
  if (!opts_.greedy())
    for (int64_t k = 0; k < used; ++k) host_.uniform();  // one per draw, as Sampler::next
  finished_.clear();
  run_ = 0;
}

}  // namespace duet
