#pragma once
// The one attention + KV entry of every model family (llama.cpp's build_attn with its inp_attn).
// A family projects q, k, v, applies its positions (RoPE reads AttentionInput::positions) and
// calls attend(); it never sees the cache layout, the masks or how many sequences a step holds.
#include <torch/types.h>

#include <vector>

#include "common/batch.hpp"
#include "common/kv_pool.hpp"
#include "common/rope.hpp"

namespace duet {

// An all-decode step padded to a bucket (a CUDA graph's fixed shape): `rows` rows, `keys` keys
// per row. Padded rows attend to the scratch block only; their outputs are to be dropped.
struct DecodePadding {
  int64_t rows = 0, keys = 0;  // 0: exact
};

// Device tensors that describe one step for one device, built once per step and shared by every
// layer of a stage. T counts padded rows too.
struct AttentionInput {
  int64_t tokens = 0;         // T
  int64_t window = 0;         // sliding window the masks were built with (0: none)
  int64_t max_block = 0;      // highest block id the step touches (the pool must hold it)
  torch::Tensor positions;    // [T] int64: each token's position in its sequence (RoPE)
  torch::Tensor write_slots;  // [T] int64: block * block_size + offset where its K/V go

  // Rows of one position, attended together: B rows, L keys each (the last L of the row's
  // history at most; padding keys read the scratch block and are masked).
  int64_t decode_rows = 0;     // B
  bool decode_only = false;    // tokens == decode rows, in row order: no scatter needed
  torch::Tensor decode_tokens; // [B] int64: the rows' token indices in x (undefined if decode_only)
  torch::Tensor decode_slots;  // [B, L] int64: slots of each row's keys, oldest first
  torch::Tensor decode_mask;   // [B, L] bool: true = may attend

  // Rows of several positions (prefill chunks, k drafts to verify), one by one.
  struct Span {
    int64_t token = 0, n = 0;  // tokens [token, token + n) of x
    int64_t start = 0;         // position of its first token
    int64_t first_key = 0;     // position of its first key (> 0 only under the input's window)
    torch::Tensor slots;       // [K] int64: slots of the keys the row may see, oldest first
    torch::Tensor mask;        // [n, K] bool: causal (and sliding-window) mask
  };
  std::vector<Span> spans;

  // The same step for the CUDA kernels (common/cuda/): one row per token of x, each reading its
  // keys from the pool in place through a block table (no gathered copy). Built on every device
  // (cheap; the CPU tests check that they name the keys the masks above let through).
  // Token t's keys are positions key_offset[t] + j, j < key_len[t], of its table's blocks.
  struct PagedRows {
    torch::Tensor tables;       // [R, nb] int64 block ids, each from the block of the row's first key
    torch::Tensor table_index;  // [T] table row of each token (undefined: token t uses row t)
    torch::Tensor key_offset;   // [T]
    torch::Tensor key_len;      // [T]
    int64_t block_size = 0;
    int64_t max_keys = 0;       // the most keys of any token
    int64_t max_span = 0;       // the most tokens of one row (1: all decode)
  };
  PagedRows paged;

  // Computed by the first layer that needs them and reused by the others of the step: RoPE rows
  // at `positions` (per table) and the masks of a layer window narrower than the input's (per
  // window). Reset before each run of the blocks (a CUDA graph capture must record the lookup,
  // not a value from a warm-up run).
  struct RopeRows {
    const RopeTable* table;
    torch::Tensor cos, sin;  // [T, 1, rotary_dim]
  };
  struct WindowMasks {
    int64_t window;
    torch::Tensor decode;              // [B, L]
    std::vector<torch::Tensor> spans;  // [n, K] per span
  };
  mutable std::vector<RopeRows> rope_memo;
  mutable std::vector<WindowMasks> window_memo;
  void reset_memo() const {
    rope_memo.clear();
    window_memo.clear();
  }
};

// How one layer attends: the scale of q.k, Gemma 2's soft-cap of the scores (cap * tanh(s / cap);
// 0: none) and its sliding window (0: every key). A layer window narrower than the input's is
// applied by masking (a stage whose layers differ, as Gemma's, builds its input without a window).
struct LayerAttention {
  double scale = 1.0;
  double softcap = 0.0;
  int64_t window = 0;
};

// Index tensors for `batch` on `device`: built on the host as one int64 buffer, copied once
// (pinned, non-blocking on CUDA); masks are computed on the device from it. `window` > 0 limits
// each query to the last `window` keys up to itself (transformers' sliding_window). Throws
// std::invalid_argument for a malformed batch.
AttentionInput build_attention_input(const StepBatch& batch, int64_t block_size, int64_t window, c10::Device device,
                                     DecodePadding pad = {});
// Keys a decode row at `start` attends to: start + 1, or the window when that is smaller.
int64_t decode_keys(int64_t start, int64_t window);

// Writes k, v [T, kv_heads, d] at the input's write slots of `kv` (no host sync), then runs
// grouped-query attention of q [T, q_heads, d] over each row's history. Returns [T, q_heads * d].
// Throws std::invalid_argument when the layer's window is wider than the input's.
torch::Tensor attend(const AttentionInput& in, const LayerKvView& kv, const torch::Tensor& q, const torch::Tensor& k,
                     const torch::Tensor& v, const LayerAttention& layer);
// The same with the input's window and no soft-cap.
torch::Tensor attend(const AttentionInput& in, const LayerKvView& kv, const torch::Tensor& q, const torch::Tensor& k,
                     const torch::Tensor& v, double scale);

// x [T, heads, d] rotated at the input's positions by `table` (rows looked up once per step).
torch::Tensor apply_rope(const AttentionInput& in, const RopeTable& table, const torch::Tensor& x);

}  // namespace duet
