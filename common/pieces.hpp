#pragma once
// The pieces a decoder-only model is cut into. Each can be built alone, on any device, reading
// only its own tensors: the edge builds embedding + final norm + head, the cloud builds blocks.
// Weights are immutable after load and shared; per-sequence state lives in a KV pool's blocks.
#include <torch/types.h>

#include <memory>

#include "common/checkpoint.hpp"
#include "common/attention.hpp"

namespace duet {

class Embedding {
 public:
  virtual ~Embedding() = default;
  // ids [n] (int64) at positions [start, start+n) -> hidden [n, hidden]
  virtual torch::Tensor forward(const torch::Tensor& ids, int64_t start) const = 0;
};

// One transformer layer. forward() takes the tokens of a whole step (several sequences, any mix
// of decode and prefill rows) and leaves every cache concern to attend() (common/attention.hpp).
class Block {
 public:
  virtual ~Block() = default;
  // x [T, hidden]: the step's tokens as `in` describes them; writes their K/V into `kv` and
  // attends over each row's history -> [T, hidden]. No host sync, no shape that depends on
  // positions: a CUDA graph can capture it. `keep` (int64 on x's device; undefined: all): the
  // positions whose output is wanted, for the plan's last layer (llama.cpp's inp_out_ids): every
  // position's K/V is still written and attended with, the rest of the layer runs for these only
  // -> [keep.size(0), hidden].
  virtual torch::Tensor forward(const torch::Tensor& x, const AttentionInput& in, const LayerKvView& kv,
                                const torch::Tensor& keep) const = 0;
  virtual KvShape kv_shape() const = 0;
  virtual int64_t sliding_window() const { return 0; }  // 0: full attention
  virtual int64_t weight_bytes() const = 0;
  virtual int64_t kv_bytes_per_position() const = 0;
};

// A layer past its attention keeps only the positions `keep` names (undefined: all of them).
inline void keep_positions(const torch::Tensor& keep, torch::Tensor& x, torch::Tensor& attn) {
  if (!keep.defined()) return;
  x = x.index_select(0, keep);
  attn = attn.index_select(0, keep);
}

class FinalNorm {
 public:
  virtual ~FinalNorm() = default;
  virtual torch::Tensor forward(const torch::Tensor& x) const = 0;  // [n, hidden] -> [n, hidden]
};

class LmHead {
 public:
  virtual ~LmHead() = default;
  virtual torch::Tensor forward(const torch::Tensor& x) const = 0;  // [n, hidden] -> fp32 logits [n, vocab]
};

// One factory per family (common/models/*.cpp); these dispatch on config().family.
std::unique_ptr<Embedding> load_embedding(const Checkpoint& ckpt, const LoadOptions& opts);
std::unique_ptr<Block> load_block(const Checkpoint& ckpt, int64_t layer, const LoadOptions& opts);
std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ckpt, const LoadOptions& opts);
// The head reuses the embedding's weight when the model ties them and `tied_from` is given.
std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ckpt, const LoadOptions& opts,
                                     const Embedding* tied_from = nullptr);

}  // namespace duet
