#pragma once
// The few places where LibTorch 1.13 (Debian, CPU) and LibTorch 2.x (PyTorch, CUDA) differ.
#include <torch/torch.h>
#include <torch/version.h>

#if TORCH_VERSION_MAJOR >= 2
#define DUET_HAVE_SDPA 1
#else
#define DUET_HAVE_SDPA 0
#endif
// at::rms_norm (2.4+; one fused kernel on CUDA in recent releases instead of eight)
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define DUET_HAVE_RMS_NORM 1
#else
#define DUET_HAVE_RMS_NORM 0
#endif

namespace duet::compat {

// Attention over [..., q_len, d] x [..., kv_len, d]; mask is boolean, broadcastable to [..., q_len, kv_len]
// (true = may attend), or additive in q's dtype (0 or -inf), or undefined for "attend to
// everything". Returns [..., q_len, d].
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, double scale) {
#if DUET_HAVE_SDPA
  return at::scaled_dot_product_attention(q, k, v, mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt,
                                          0.0, false, scale);
#else
  // matmul + softmax, the softmax in fp32 as fused kernels do
  auto scores = torch::matmul(q, k.transpose(-2, -1)).to(torch::kFloat) * scale;
  if (mask.defined() && mask.scalar_type() == torch::kBool)
    scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  else if (mask.defined())
    scores = scores + mask.to(torch::kFloat);
  auto probs = torch::softmax(scores, -1).to(v.scalar_type());
  return torch::matmul(probs, v);
#endif
}

}  // namespace duet::compat
