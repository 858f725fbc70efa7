#pragma once
// Small numerical building blocks shared by the model families, written to match transformers'
// arithmetic (where it upcasts, in which order it multiplies).
#include <torch/types.h>

#include "common/model_config.hpp"

namespace duet::ops {

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
torch::Tensor activation(const torch::Tensor& x, Activation act);

// Causal mask for n new queries at positions [start, start+n) over kv_len keys, bool [n, kv_len],
// true = may attend; undefined when every query may see every key (a single decode step).
torch::Tensor causal_mask(int64_t n, int64_t start, int64_t kv_len, int64_t sliding_window, c10::Device device);

// Attention of q [q_heads, n, d] over k, v [kv_heads, L, d] with grouped-query sharing: query
// heads are folded onto their KV head ([kv_heads, group*n, d]) instead of copying K and V.
torch::Tensor grouped_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& mask, double scale);

// Rotary embedding tables as transformers builds them: inv_freq in fp32, cos/sin [max_pos, d].
struct RopeTable {
  torch::Tensor cos, sin;  // [max_positions, head_dim], compute dtype, on the device
  RopeTable(int64_t head_dim, int64_t max_positions, double theta, c10::ScalarType dtype, c10::Device device);
  // x [heads, n, d] at positions [start, start+n)
  torch::Tensor apply(const torch::Tensor& x, int64_t start) const;
  // x [heads, 1, d] at the position held on the device in pos (int64 [1])
  torch::Tensor apply_at(const torch::Tensor& x, const torch::Tensor& pos) const;
  // x [heads, n, d] with the rows of cos/sin already picked: c, s [1, n, d]
  torch::Tensor apply_rows(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& s) const;
};

}  // namespace duet::ops
