#pragma once
// Small numerical building blocks shared by the model families, written to match transformers'
// arithmetic (where it upcasts, in which order it multiplies).
#include <torch/types.h>

#include <utility>

#include "common/model_config.hpp"

namespace duet::ops {

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
torch::Tensor activation(const torch::Tensor& x, Activation act);

// Attention of q [B, q_heads, m, d] over k, v [B, kv_heads, L, d] under mask [B, m, L] (bool, true =
// may attend), with grouped-query sharing: query heads are folded onto their KV head
// ([B, kv_heads, group*m, d]) instead of copying K and V. Returns [B, q_heads, m, d].
// softcap > 0: scores = softcap * tanh(scores / softcap) before the mask (Gemma 2), computed as
// transformers' eager attention does (scores in the compute dtype, softmax in fp32).
torch::Tensor grouped_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& mask, double scale, double softcap = 0.0);

// Gemma's RMSNorm: x * rsqrt(mean(x^2) + eps) * (1 + w), all in fp32, then cast back.
// `one_plus_w` is 1 + w in fp32, computed once at load.
torch::Tensor rms_norm_one_plus(const torch::Tensor& x, const torch::Tensor& one_plus_w, double eps);

// The residual sum and its RMSNorm: (x + a, rms_norm(x + a, weight)), one pass on CUDA.
std::pair<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor& x, const torch::Tensor& a,
                                                     const torch::Tensor& weight, double eps);

// The gated MLP's middle: gu [T, 2 * inter] (gate, then up) -> act(gate) * up [T, inter], one pass
// on CUDA.
torch::Tensor gated_activation(const torch::Tensor& gu, Activation act);

}  // namespace duet::ops
