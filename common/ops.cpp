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

torch::Tensor grouped_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& mask, double scale) {
  const int64_t B = q.size(0), q_heads = q.size(1), m = q.size(2), d = q.size(3);
  const int64_t kv_heads = k.size(1), group = q_heads / kv_heads;
  auto qg = q.reshape({B, kv_heads, group * m, d});  // rows: (group member, position)
  // [B, 1, group*m, L]; one query row broadcasts over the group as it is
  auto mg = (m == 1 ? mask : mask.repeat({1, group, 1})).unsqueeze(1);
  auto out = compat::attention(qg, k, v, mg, scale);  // [B, kv_heads, group*m, d]
  return out.reshape({B, q_heads, m, d});
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

torch::Tensor RopeTable::apply_rows(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& s) {
  const int64_t half = x.size(2) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * c + rotated * s;
}

}  // namespace duet::ops
