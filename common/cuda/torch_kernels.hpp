#pragma once
// duet's CUDA kernels (common/cuda/kernels.hpp) for LibTorch tensors: shape, dtype and layout
// checks, the current stream (so CUDA graphs capture them) and scratch memory from LibTorch's
// allocator. Built only where CMake found CUDA and LibTorch has it (DUET_WITH_CUDA_KERNELS).
// Callers check `usable` first and keep the LibTorch path for everything else.
#include <torch/types.h>

#include <utility>

namespace duet::cuda {

// On unless DUET_CUDA_KERNELS=0 at start; tests switch it to compare with the LibTorch path.
bool kernels_enabled();
void set_kernels_enabled(bool on);

// The paged rows of a step (see AttentionInput::PagedRows) and one layer's attention.
struct PagedAttentionCall {
  const torch::Tensor *tables, *table_index, *key_offset, *key_len;  // table_index may be undefined
  int64_t block_size = 0, max_keys = 0, window = 0;
  double scale = 1.0, softcap = 0.0;
};
// Whether paged_attention takes q [T, q_heads, d] (heads contiguous) over a pool of k_pool's dtype.
bool paged_attention_usable(const torch::Tensor& q, const torch::Tensor& k_pool);
// Returns [T, q_heads * d]: row t attends over its keys in the pool.
torch::Tensor paged_attention(const PagedAttentionCall& c, const torch::Tensor& k_pool, const torch::Tensor& v_pool,
                              const torch::Tensor& q);

// k_pool[slots[t]] = k[t], v_pool[slots[t]] = v[t]; k, v [T, kv_heads, d] with contiguous heads.
bool write_kv_usable(const torch::Tensor& k_pool, const torch::Tensor& k, const torch::Tensor& v);
void write_kv(const torch::Tensor& k_pool, const torch::Tensor& v_pool, const torch::Tensor& k, const torch::Tensor& v,
              const torch::Tensor& slots);

// x [T, heads, d] rotated at positions by the tables cos, sin [P, rotary_dim]; contiguous result.
bool rope_usable(const torch::Tensor& x, const torch::Tensor& cos);
torch::Tensor rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                   const torch::Tensor& positions);

// RMSNorm over the last dim of a contiguous x; one_plus: w is Gemma's fp32 (1 + w).
bool rms_norm_usable(const torch::Tensor& x, const torch::Tensor& w, bool one_plus);
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps, bool one_plus);
// (x + a, rms_norm(x + a)) in one pass.
std::pair<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor& x, const torch::Tensor& a,
                                                     const torch::Tensor& w, double eps, bool one_plus);

// gu [T, 2 * inter] (gate then up) -> act(gate) * up [T, inter]; act: 0 silu, 1 gelu tanh, 2 gelu.
bool gated_usable(const torch::Tensor& gu);
torch::Tensor gated_activation(const torch::Tensor& gu, int act);

}  // namespace duet::cuda
