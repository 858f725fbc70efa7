#pragma once
// The pieces a decoder-only model is cut into. Each can be built alone, on any device, reading
// only its own tensors: the edge builds embedding + final norm + head, the cloud builds blocks.
// Weights are immutable after load and shared; per-sequence state lives in LayerKvCache.
#include <torch/types.h>

#include <memory>

#include "common/checkpoint.hpp"
#include "common/kv_cache.hpp"

namespace duet {

class Embedding {
 public:
  virtual ~Embedding() = default;
  // ids [n] (int64) at positions [start, start+n) -> hidden [n, hidden]
  virtual torch::Tensor forward(const torch::Tensor& ids, int64_t start) const = 0;
};

// A single decode position whose shapes do not depend on the position, so that it can be
// captured once in a CUDA graph and replayed: the position lives on the device.
struct StaticStep {
  torch::Tensor pos;   // int64 [1] on the device
  torch::Tensor mask;  // [1, capacity], additive in the compute dtype: 0 for keys at or before pos, -inf after
  // Per-step values the first block computes and the others reuse (rotary rows at pos), keyed by
  // the table they come from.
  mutable const void* rope_key = nullptr;
  mutable torch::Tensor rope_cos, rope_sin;  // [1, 1, head_dim]
};

class Block {
 public:
  virtual ~Block() = default;
  // hidden [n, hidden] at positions [start, start+n), reading and extending kv -> [n, hidden]
  virtual torch::Tensor forward(const torch::Tensor& x, LayerKvCache& kv, int64_t start) const = 0;
  // x [1, hidden] at position step.pos: writes k/v with kv.write_at and attends over kv's whole
  // capacity under step.mask -> [1, hidden]. No host sync, no position-dependent shape. The caller
  // has called kv.prepare_static(start) and calls kv.commit(start + 1) afterwards.
  virtual bool supports_static_decode(int64_t capacity) const { return false; }
  virtual torch::Tensor forward_static(const torch::Tensor& x, LayerKvCache& kv, const StaticStep& step) const;
  virtual LayerKvCache make_cache(int64_t max_positions) const = 0;
  virtual int64_t weight_bytes() const = 0;
  virtual int64_t kv_bytes_per_position() const = 0;
};

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
