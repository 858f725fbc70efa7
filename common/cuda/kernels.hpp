#pragma once
// Launchers of duet's CUDA kernels (common/cuda/*.cu), as plain pointers and sizes: no CUDA and
// no LibTorch here, so that any C++ file can include it. common/cuda/torch_kernels.hpp wraps these
// for LibTorch tensors (checks, streams, scratch memory); use that one from the model code.
//
// Every launcher takes the CUDA stream as void* (cudaStream_t) and only enqueues work: no sync,
// no allocation, so a CUDA graph can capture it. Each throws std::runtime_error naming what was
// wrong when the launch fails or a size is outside what the kernels were built for.
#include <cstddef>
#include <cstdint>

namespace duet::cuda {

enum class DType { f32, bf16, f16 };

// Attention of query rows over the paged KV pool, read in place through per-row block tables.
// Row r (one query token) attends to its keys j in [max(0, key_len - window), key_len): key j sits
// at position key_offset[r] + j of the row's table, i.e. in block table[kp / block_size] at
// offset kp % block_size of the pool [slots, kv_heads, head_dim]. Keys outside that range are
// never read (a reused block's stale values, NaN included, cannot reach the output).
// Query heads h and h + 1 ... share KV head h / (q_heads / kv_heads) (grouped-query attention).
// scores = scale * q.k, then softcap * tanh(scores / softcap) when softcap > 0; softmax in fp32.
struct PagedAttentionArgs {
  void* out = nullptr;              // [rows at out_token, q_heads, head_dim], row stride out_stride
  const void* q = nullptr;          // [tokens, q_heads, head_dim], row stride q_stride
  const void* k_pool = nullptr;     // [slots, kv_heads, head_dim], contiguous
  const void* v_pool = nullptr;
  const int64_t* tables = nullptr;      // [table rows, table_stride] block ids
  const int64_t* table_index = nullptr; // [rows] table row of each row (nullptr: row r uses table row r)
  const int64_t* key_offset = nullptr;  // [rows]
  const int64_t* key_len = nullptr;     // [rows], >= 1
  const int64_t* token = nullptr;       // [rows] token of q and out of each row (nullptr: row r is token r)
  int64_t rows = 0, table_stride = 0, q_heads = 0, kv_heads = 0, head_dim = 0, block_size = 0;
  int64_t q_stride = 0, out_stride = 0;  // elements between consecutive tokens
  int64_t max_keys = 0;  // an upper bound of any row's keys (after the window): sizes the split
  int64_t window = 0;    // 0: every key
  float scale = 1.f, softcap = 0.f;
  DType dtype = DType::f32;
  int splits = 1;            // from paged_attention_splits(); > 1 needs the workspace
  void* workspace = nullptr; // paged_attention_workspace_bytes() bytes
};
// How many key ranges (flash-decoding splits) a step of these sizes is cut into: enough blocks
// to fill the device, no range shorter than 64 keys. Depends on sizes only (a graph replays it).
int paged_attention_splits(int64_t rows, int64_t q_heads, int64_t kv_heads, int64_t max_keys, int device);
size_t paged_attention_workspace_bytes(int64_t rows, int64_t q_heads, int64_t head_dim, int splits);
// Whether paged_attention handles this head_dim (8, 16, 32, 64, 128, 256) and grouping (else use LibTorch).
bool paged_attention_supports(int64_t head_dim, int64_t q_heads, int64_t kv_heads);
void paged_attention(const PagedAttentionArgs& a, void* stream);

// pool[slots[t], h, :] = src[t, h, :] for k and v (t < tokens, row strides in elements).
void write_kv(void* k_pool, void* v_pool, const void* k, const void* v, const int64_t* slots, int64_t tokens,
              int64_t kv_heads, int64_t head_dim, int64_t k_stride, int64_t v_stride, DType dt, void* stream);

// out[t, h, :] = x[t, h, :] rotated by the rows cos, sin [*, rotary_dim] at positions[t] (halves paired
// as transformers' rotate_half; dims past rotary_dim copied), rounded as LibTorch rounds
// x*c + rotate_half(x)*s in the dtype. x row stride x_stride, out contiguous [tokens, heads, head_dim].
void rope(void* out, const void* x, const void* cos, const void* sin, const int64_t* positions, int64_t tokens,
          int64_t heads, int64_t head_dim, int64_t rotary_dim, int64_t x_stride, DType dt, void* stream);

// RMSNorm of rows of `cols`: out = w * round(x * rsqrt(mean(x^2) + eps)) (fp32 inside), and with
// `residual`: x = a + residual is formed first, written to sum_out, then normed. one_plus: w + 1
// (Gemma's form, the product in fp32 then rounded once).
void rms_norm(void* out, void* sum_out, const void* x, const void* residual, const void* w, int64_t rows,
              int64_t cols, float eps, bool one_plus, DType dt, void* stream);

enum class Gate { silu, gelu_tanh, gelu_exact };
// out[r, i] = act(gu[r, i]) * gu[r, inter + i]: the gated MLP's activation in one pass.
void gated_activation(void* out, const void* gu, int64_t rows, int64_t inter, Gate g, DType dt, void* stream);

}  // namespace duet::cuda
