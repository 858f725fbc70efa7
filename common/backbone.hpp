#pragma once
// The transformer blocks of one sequence, seen from the edge: hidden states in, the last block's
// hidden states out. LocalBackbone runs them in process (the monolithic reference); the edge's
// remote backbone sends them to the cloud. The generation loop cannot tell them apart, which is
// what makes "split == monolithic" a meaningful test.
#include <torch/types.h>

#include <memory>
#include <vector>

#include "common/kv_blocks.hpp"
#include "common/pieces.hpp"
#include "common/round_timing.hpp"
#include "common/step_runner.hpp"

namespace duet {

class Backbone {
 public:
  virtual ~Backbone() = default;
  // hidden [n, H] for positions [start, start+n); returns [n, H], or [1, H] (last position) when
  // last_only. Positions at or after `start` that were sent before are replaced.
  virtual torch::Tensor forward(const torch::Tensor& hidden, int64_t start, bool last_only) = 0;
  virtual void reset() = 0;  // forget the sequence
  // The compute time of the last forward as measured where the blocks ran, in ms (-1: unknown).
  virtual double last_compute_ms() const { return -1.0; }
  // Where the last forward's time went (per-hop telemetry); all unknown by default.
  virtual RoundTiming last_timing() const { return {}; }
};

// Blocks [first, last) of one checkpoint on one device: the daemon's step path with one row,
// with its own block allocator and KV pool (storage grows with the sequence, up to max_positions).
class LocalBackbone final : public Backbone {
 public:
  LocalBackbone(const Checkpoint& ckpt, const LoadOptions& opts, int64_t max_positions, int64_t first = 0,
                int64_t last = -1);
  // The same over blocks the caller loaded (a nested stack: notagen's character decoder).
  LocalBackbone(std::vector<std::unique_ptr<Block>> blocks, const LoadOptions& opts, int64_t max_positions);
  torch::Tensor forward(const torch::Tensor& hidden, int64_t start, bool last_only) override;
  void reset() override;
  double last_compute_ms() const override { return last_ms_; }
  int64_t weight_bytes() const;

 private:
  void start_runner(const LoadOptions& opts);

  c10::Device device_;
  int64_t max_positions_;
  std::vector<std::unique_ptr<Block>> blocks_;
  KvBlockAllocator allocator_;
  std::unique_ptr<StepRunner> runner_;
  BlockTable table_;
  double last_ms_ = -1;
};

// Two backbones one after the other, e.g. the edge's own first blocks (in process) and the
// daemon's (--edge-blocks): the first returns every row, the second what was asked.
class ChainedBackbone final : public Backbone {
 public:
  ChainedBackbone(Backbone& first, Backbone& second) : first_(first), second_(second) {}
  torch::Tensor forward(const torch::Tensor& hidden, int64_t start, bool last_only) override {
    return second_.forward(first_.forward(hidden, start, /*last_only=*/false), start, last_only);
  }
  void reset() override {
    first_.reset();
    second_.reset();
  }
  double last_compute_ms() const override { return second_.last_compute_ms(); }  // the remote part's
  RoundTiming last_timing() const override { return second_.last_timing(); }

 private:
  Backbone& first_;
  Backbone& second_;
};

}  // namespace duet
