#include "common/ops.hpp"

#include <torch/torch.h>

#include "common/torch_compat.hpp"

namespace duet::ops {

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
#if DUET_HAVE_RMS_NORM
  // one kernel on the GPU; fp32 inside, rounded once (transformers rounds before the scale: the
  // results differ by at most one rounding of the compute dtype)
  if (x.is_cuda()) return at::rms_norm(x, {weight.size(0)}, weight, eps);
#endif
  // transformers: variance in fp32, normalise in fp32, cast back, then scale
  auto xf = x.to(torch::kFloat);
  auto var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * torch::rsqrt(var + eps)).to(x.scalar_type());
}

torch::Tensor activation(const torch::Tensor& x, Activation act) {
  switch (act) {
    case Activation::silu: return torch::silu(x);
    case Activation::gelu_tanh: return torch::gelu(x, "tanh");
    case Activation::gelu_exact: return torch::gelu(x);
  }
  return x;
}

torch::Tensor causal_mask(int64_t n, int64_t start, int64_t kv_len, int64_t sliding_window, c10::Device device) {
  if (n == 1 && (sliding_window <= 0 || kv_len <= sliding_window)) return {};
  auto q_pos = torch::arange(start, start + n, torch::TensorOptions().dtype(torch::kLong).device(device)).unsqueeze(1);
  auto k_pos = torch::arange(0, kv_len, torch::TensorOptions().dtype(torch::kLong).device(device)).unsqueeze(0);
  auto mask = k_pos <= q_pos;
  if (sliding_window > 0) mask = mask.logical_and(k_pos > q_pos - sliding_window);
  return mask;
}

torch::Tensor grouped_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& mask, double scale) {
  const int64_t q_heads = q.size(0), n = q.size(1), d = q.size(2);
  const int64_t kv_heads = k.size(0);
  const int64_t group = q_heads / kv_heads;
  if (group == 1) return compat::attention(q, k, v, mask, scale);
  auto qg = q.reshape({kv_heads, group * n, d});          // rows: (group member, position)
  // [group*n, L]; a one-row mask (a single query) broadcasts as it is
  auto mg = mask.defined() && mask.size(0) > 1 ? mask.repeat({group, 1}) : mask;
  auto out = compat::attention(qg, k, v, mg, scale);       // [kv_heads, group*n, d]
  return out.reshape({q_heads, n, d});
}

RopeTable::RopeTable(int64_t head_dim, int64_t max_positions, double theta, c10::ScalarType dtype,
                     c10::Device device) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  // inv_freq = 1 / theta^(2i/d), computed as transformers does (int64 arange -> float)
  auto idx = torch::arange(0, head_dim, 2, torch::TensorOptions().dtype(torch::kLong)).to(torch::kFloat);
  auto inv_freq = 1.0 / torch::pow(torch::tensor(theta, torch::TensorOptions().dtype(torch::kDouble)).to(torch::kFloat),
                                   idx / static_cast<double>(head_dim));
  auto pos = torch::arange(0, max_positions, f32);
  auto freqs = torch::outer(pos, inv_freq);  // [max_pos, d/2]
  auto emb = torch::cat({freqs, freqs}, -1);  // [max_pos, d]
  cos = emb.cos().to(device, dtype);
  sin = emb.sin().to(device, dtype);
}

torch::Tensor RopeTable::apply(const torch::Tensor& x, int64_t start) const {
  const int64_t n = x.size(1), half = x.size(2) / 2;
  auto c = cos.narrow(0, start, n).unsqueeze(0);  // [1, n, d]
  auto s = sin.narrow(0, start, n).unsqueeze(0);
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * c + rotated * s;
}

torch::Tensor RopeTable::apply_at(const torch::Tensor& x, const torch::Tensor& pos) const {
  return apply_rows(x, cos.index_select(0, pos).unsqueeze(0), sin.index_select(0, pos).unsqueeze(0));
}

torch::Tensor RopeTable::apply_rows(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& s) const {
  const int64_t half = x.size(2) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * c + rotated * s;
}

}  // namespace duet::ops
