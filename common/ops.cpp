#include "common/ops.hpp"

#include <torch/torch.h>

#include <limits>

#include "common/torch_compat.hpp"
#if DUET_WITH_CUDA_KERNELS
#include "common/cuda/torch_kernels.hpp"
#endif

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
                                const torch::Tensor& mask, double scale, double softcap) {
  const int64_t B = q.size(0), q_heads = q.size(1), m = q.size(2), d = q.size(3);
  const int64_t kv_heads = k.size(1), group = q_heads / kv_heads;
  auto qg = q.reshape({B, kv_heads, group * m, d});  // rows: (group member, position)
  // [B, 1, group*m, L]; one query row broadcasts over the group as it is
  auto mg = (m == 1 ? mask : mask.repeat({1, group, 1})).unsqueeze(1);
  torch::Tensor out;  // [B, kv_heads, group*m, d]
  if (softcap > 0) {
    auto scores = torch::matmul(qg, k.transpose(-2, -1)) * scale;
    scores = torch::tanh(scores / softcap) * softcap;
    scores = scores.masked_fill(mg.logical_not(), -std::numeric_limits<double>::infinity());
    out = torch::matmul(torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type()), v);
  } else {
    out = compat::attention(qg, k, v, mg, scale);
  }
  return out.reshape({B, q_heads, m, d});
}

torch::Tensor rms_norm_one_plus(const torch::Tensor& x, const torch::Tensor& one_plus_w, double eps) {
#if DUET_WITH_CUDA_KERNELS
  if (cuda::kernels_enabled() && cuda::rms_norm_usable(x, one_plus_w, true)) return cuda::rms_norm(x, one_plus_w, eps, true);
#endif
  auto xf = x.to(torch::kFloat);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return (normed * one_plus_w).to(x.scalar_type());
}

std::pair<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor& x, const torch::Tensor& a,
                                                     const torch::Tensor& weight, double eps) {
#if DUET_WITH_CUDA_KERNELS
  if (cuda::kernels_enabled() && cuda::rms_norm_usable(x, weight, false) && a.sizes() == x.sizes() &&
      a.scalar_type() == x.scalar_type())
    return cuda::add_rms_norm(x, a, weight, eps, false);
#endif
  auto sum = x + a;
  return {sum, rms_norm(sum, weight, eps)};
}

torch::Tensor gated_activation(const torch::Tensor& gu, Activation act) {
#if DUET_WITH_CUDA_KERNELS
  if (cuda::kernels_enabled() && cuda::gated_usable(gu)) return cuda::gated_activation(gu, static_cast<int>(act));
#endif
  const int64_t inter = gu.size(-1) / 2;
  return activation(gu.narrow(-1, 0, inter), act) * gu.narrow(-1, inter, inter);
}

}  // namespace duet::ops
