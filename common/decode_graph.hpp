#pragma once
// One decode position through a run of blocks on one device, replayed from a CUDA graph where the
// build has CUDA. A decode step of a small model is hundreds of small kernels; launched one by one
// from the host they cost more than the weights take to read. A graph launches them all at once.
//
// A graph fixes every address and shape it touches: the blocks' weights (immutable), the KV
// buffers of the caches it was captured with, and the cache capacity. So graphs are kept per
// (capacity, KV buffers); a cache that grows to its next chunk gets a new graph, and a sequence
// whose caches sit at other addresses (another session) gets its own. The position is a device
// tensor, the attention runs over the whole capacity under a mask (Block::forward_static).
//
// Switch off with DUET_CUDA_GRAPHS=0 (the eager path is then used everywhere).
#include <torch/types.h>

#include <memory>
#include <vector>

#include "common/pieces.hpp"

namespace duet {

class DecodeGraphs {
 public:
  explicit DecodeGraphs(size_t max_graphs = 4);
  ~DecodeGraphs();
  DecodeGraphs(DecodeGraphs&&) noexcept;
  DecodeGraphs& operator=(DecodeGraphs&&) noexcept;

  // True when this build can capture CUDA graphs and DUET_CUDA_GRAPHS is not "0".
  static bool available();

  // x [1, H] on the blocks' device at position `start`. Returns [1, H] (a tensor of its own), or
  // an undefined tensor when a graph cannot take this step (CPU, switched off, a block that cannot
  // decode statically): the caller then runs the blocks eagerly.
  torch::Tensor try_step(const std::vector<const Block*>& blocks, const std::vector<LayerKvCache*>& caches,
                         const torch::Tensor& x, int64_t start);

  size_t captured() const { return captures_; }  // graphs captured so far (each costs a warm-up step)

 private:
  struct Graph;
  std::vector<std::unique_ptr<Graph>> graphs_;  // most recently used last
  size_t max_graphs_;
  size_t captures_ = 0;
  bool failed_ = false;  // a capture failed: eager from then on
};

// The static decode path without a graph, for tests on any device: same arithmetic as a replay.
torch::Tensor static_decode_step(const std::vector<const Block*>& blocks, const std::vector<LayerKvCache*>& caches,
                                 const torch::Tensor& x, int64_t start);

// A run of blocks over x [n, H] at positions [start, start+n), each with its cache: a single
// position on CUDA replays a graph from `graphs` when one can take the step, anything else runs
// the blocks eagerly. The one entry point of LocalBackbone and of each daemon stage.
torch::Tensor run_blocks(const std::vector<std::unique_ptr<Block>>& blocks, std::vector<LayerKvCache>& caches,
                         DecodeGraphs& graphs, const torch::Tensor& x, int64_t start);

}  // namespace duet
