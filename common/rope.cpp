#include "common/rope.hpp"

#include <torch/torch.h>

#include <cmath>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace duet {

namespace {

const auto kF32 = torch::TensorOptions().dtype(torch::kFloat);

// arange(0, dim, 2) / dim in fp32, as transformers builds the exponent
torch::Tensor exponents(int64_t dim) {
  return torch::arange(0, dim, 2, torch::TensorOptions().dtype(torch::kLong)).to(torch::kFloat) / double(dim);
}

// 1 / theta^(2i/dim): transformers' `1.0 / (base ** exponent)` with a Python float base
torch::Tensor default_inv_freq(double theta, int64_t dim) {
  return 1.0 / torch::pow(theta, exponents(dim));
}

torch::Tensor llama3_inv_freq(const RopeSpec& s, int64_t dim) {
  auto inv = default_inv_freq(s.theta, dim);
  const double old_ctx = double(s.original_max_positions);
  const double low_wavelen = old_ctx / s.low_freq_factor, high_wavelen = old_ctx / s.high_freq_factor;
  auto wavelen = 2 * M_PI / inv;
  auto scaled = torch::where(wavelen > low_wavelen, inv / s.factor, inv);
  auto smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  auto medium = (wavelen < high_wavelen).logical_not().logical_and((wavelen > low_wavelen).logical_not());
  return torch::where(medium, smoothed, scaled);
}

torch::Tensor yarn_inv_freq(const RopeSpec& s, int64_t dim) {
  auto pos_freqs = torch::pow(s.theta, exponents(dim));
  auto extrapolation = 1.0 / pos_freqs;
  auto interpolation = 1.0 / (s.factor * pos_freqs);
  const double base = s.theta, omax = double(s.original_max_positions);
  auto correction_dim = [&](double rotations) {
    return (double(dim) * std::log(omax / (rotations * 2 * M_PI))) / (2 * std::log(base));
  };
  double low = correction_dim(s.beta_fast), high = correction_dim(s.beta_slow);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;  // transformers: prevent a singularity
  auto ramp = torch::clamp((torch::arange(dim / 2, kF32) - low) / (high - low), 0, 1);
  auto extrapolation_factor = 1 - ramp;
  return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
}

torch::Tensor longrope_inv_freq(const RopeSpec& s, int64_t dim, bool long_factors) {
  const auto& f = long_factors ? s.long_factor : s.short_factor;
  auto ext = torch::tensor(std::vector<float>(f.begin(), f.end()), kF32);
  return 1.0 / (ext * torch::pow(s.theta, exponents(dim)));
}

}  // namespace

torch::Tensor RopeTable::inv_freq(const RopeSpec& s, int64_t head_dim, bool long_factors) {
  const int64_t dim = s.rotary_dim(head_dim);
  switch (s.type) {
    case RopeType::linear: return default_inv_freq(s.theta, dim) / s.factor;
    case RopeType::llama3: return llama3_inv_freq(s, dim);
    case RopeType::yarn: return yarn_inv_freq(s, dim);
    case RopeType::longrope: return longrope_inv_freq(s, dim, long_factors);
    default: return default_inv_freq(s.theta, dim);
  }
}

RopeTable::RopeTable(const RopeSpec& s, int64_t head_dim, int64_t max_positions, c10::ScalarType dtype,
                     c10::Device device) {
  const int64_t dim = s.rotary_dim(head_dim);
  auto pos = torch::arange(0, max_positions, kF32).unsqueeze(1);  // [P, 1]
  torch::Tensor freqs;                                            // [P, dim / 2]
  if (s.type == RopeType::dynamic) {
    // position p as the sequence [0, p] sees it: base grows once p + 1 passes the original context
    const int64_t orig = s.original_max_positions;
    auto seq = torch::clamp_min(torch::arange(1, max_positions + 1, torch::TensorOptions().dtype(torch::kLong)), orig);
    auto base = s.theta * torch::pow(s.factor * seq / double(orig) - (s.factor - 1), double(dim) / double(dim - 2));
    auto inv = 1.0 / torch::pow(base.unsqueeze(1), exponents(dim).unsqueeze(0));  // [P, dim / 2]
    auto within = (torch::arange(0, max_positions, torch::TensorOptions().dtype(torch::kLong)) < orig).unsqueeze(1);
    inv = torch::where(within, default_inv_freq(s.theta, dim).unsqueeze(0), inv);
    freqs = pos * inv;
  } else if (s.type == RopeType::longrope) {
    // short factors within the original context, long ones past it
    auto within = (torch::arange(0, max_positions, kF32) < double(s.original_max_positions)).unsqueeze(1);
    freqs = torch::where(within, pos * inv_freq(s, head_dim, false).unsqueeze(0),
                         pos * inv_freq(s, head_dim, true).unsqueeze(0));
  } else {
    freqs = pos * inv_freq(s, head_dim).unsqueeze(0);
  }
  auto emb = torch::cat({freqs, freqs}, -1);  // [P, dim]
  auto c = emb.cos(), sn = emb.sin();
  if (s.attention_factor != 1.0) {
    c = c * s.attention_factor;
    sn = sn * s.attention_factor;
  }
  cos = c.to(device, dtype);
  sin = sn.to(device, dtype);
}

torch::Tensor RopeTable::apply_rows(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& s) {
  const int64_t rot = c.size(-1), half = rot / 2;
  auto xr = rot == x.size(-1) ? x : x.narrow(-1, 0, rot);
  auto x1 = xr.narrow(-1, 0, half), x2 = xr.narrow(-1, half, half);
  auto rotated = xr * c + torch::cat({-x2, x1}, -1) * s;
  if (rot == x.size(-1)) return rotated;
  return torch::cat({rotated, x.narrow(-1, rot, x.size(-1) - rot)}, -1);
}

std::shared_ptr<const RopeTable> shared_rope_table(const RopeSpec& spec, int64_t head_dim, int64_t max_positions,
                                                   c10::ScalarType dtype, c10::Device device) {
  struct Entry {
    RopeSpec spec;
    int64_t head_dim, max_positions;
    c10::ScalarType dtype;
    c10::Device device;
    std::weak_ptr<const RopeTable> table;
  };
  static std::mutex mu;
  static std::vector<Entry> cache;
  std::lock_guard<std::mutex> lock(mu);
  for (auto& e : cache)
    if (e.spec == spec && e.head_dim == head_dim && e.max_positions == max_positions && e.dtype == dtype &&
        e.device == device)
      if (auto p = e.table.lock()) return p;
  auto p = std::make_shared<const RopeTable>(spec, head_dim, max_positions, dtype, device);
  cache.push_back({spec, head_dim, max_positions, dtype, device, p});
  return p;
}

}  // namespace duet
