#pragma once
// The daemon's stages: each owns the blocks of its layer range on its device (immutable, shared
// by every session). A sequence's state is a SequenceCache: one LayerKvCache per layer, each on
// its stage's device. Activations move device to device between stages.
#include <torch/types.h>

#include <memory>
#include <vector>

#include "cloud/stage_plan.hpp"
#include "common/decode_graph.hpp"
#include "common/pieces.hpp"

namespace duet::cloud {

struct Stage {
  StageSpec spec;
  c10::Device device = c10::Device(c10::kCPU);
  std::vector<std::unique_ptr<Block>> blocks;
  int64_t weight_bytes() const;
  int64_t kv_bytes_per_position() const;
};

using SequenceCache = std::vector<std::vector<LayerKvCache>>;  // [stage][layer in stage]

class Pipeline {
 public:
  Pipeline(const Checkpoint& ckpt, const std::vector<StageSpec>& plan, c10::ScalarType dtype);

  const std::vector<Stage>& stages() const { return stages_; }
  c10::Device first_device() const { return stages_.front().device; }
  c10::ScalarType dtype() const { return dtype_; }
  int64_t kv_bytes_per_position() const;  // all layers

  SequenceCache make_cache(int64_t max_positions) const;
  // x [n, H] on any device, positions [start, start+n) -> last stage's output [n, H]
  torch::Tensor forward(const torch::Tensor& x, SequenceCache& cache, int64_t start) const;

  // The plan as a table: device, layers, weight bytes, KV budget share.
  std::string describe(int64_t kv_budget_bytes) const;

 private:
  std::vector<Stage> stages_;
  c10::ScalarType dtype_;
  mutable std::vector<DecodeGraphs> graphs_;  // per stage: single-position decode steps on CUDA
};

}  // namespace duet::cloud
