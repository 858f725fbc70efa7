#pragma once
// Small numerical building blocks shared by the model families, written to match transformers'
// arithmetic (where it upcasts, in which order it multiplies).
#include <torch/types.h>

#include "common/model_config.hpp"

namespace duet::ops {

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
torch::Tensor activation(const torch::Tensor& x, Activation act);

// Attention of q [B, q_heads, m, d] over k, v [B, kv_heads, L, d] under mask [B, m, L] (bool, true =
// may attend), with grouped-query sharing: query heads are folded onto their KV head
// ([B, kv_heads, group*m, d]) instead of copying K and V. Returns [B, q_heads, m, d].
torch::Tensor grouped_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& mask, double scale);

// Rotary embedding tables as transformers builds them: inv_freq in fp32, cos/sin [max_pos, d].
struct RopeTable {
  torch::Tensor cos, sin;  // [max_positions, head_dim], compute dtype, on the device
  RopeTable(int64_t head_dim, int64_t max_positions, double theta, c10::ScalarType dtype, c10::Device device);
  // x [T, heads, d] with the rows of cos/sin at each token's position already picked: c, s [T, 1, d]
  static torch::Tensor apply_rows(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& s);
};

}  // namespace duet::ops
