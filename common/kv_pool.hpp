#pragma once
// One stage's KV storage: for each of its layers, K and V as [num_blocks, block_size, kv_heads,
// head_dim] on the stage's device, indexed by the block ids of common/kv_blocks.hpp. Attention
// sees a layer flattened over blocks ([num_blocks * block_size, kv_heads, head_dim]) and reads or
// writes "slots" (block * block_size + offset), so a step needs no per-sequence tensors.
#include <torch/types.h>

#include <vector>

#include "common/kv_blocks.hpp"

namespace duet {

struct KvShape {
  int64_t kv_heads = 0, head_dim = 0;
};

// One layer of a pool, flattened: k, v [num_blocks * block_size, kv_heads, head_dim].
struct LayerKvView {
  torch::Tensor k, v;
};

class KvPool {
 public:
  KvPool() = default;
  // Storage for `blocks` blocks, zeroed: masked keys are multiplied by 0 and a NaN left in unused
  // memory would survive that (0 * NaN) and poison the output.
  KvPool(std::vector<KvShape> layers, int64_t block_size, int64_t blocks, c10::ScalarType dtype, c10::Device device);

  LayerKvView layer(size_t i) const;
  size_t num_layers() const { return shapes_.size(); }
  int64_t blocks() const { return blocks_; }  // blocks the storage holds now
  int64_t block_size() const { return block_size_; }
  c10::Device device() const { return device_; }
  int64_t bytes_per_block() const;  // all layers, K and V
  int64_t bytes() const { return bytes_per_block() * blocks_; }

  // Grows the storage to `blocks` blocks (zeroed), copying what is there. The buffers move: a CUDA
  // graph that captured the old ones must be dropped. Returns whether it grew.
  bool grow(int64_t blocks);

 private:
  std::vector<KvShape> shapes_;
  int64_t block_size_ = kKvBlockSize, blocks_ = 0;
  c10::ScalarType dtype_ = c10::kFloat;
  c10::Device device_ = c10::Device(c10::kCPU);
  std::vector<torch::Tensor> k_, v_;  // per layer [blocks, block_size, kv_heads, head_dim]
};

}  // namespace duet
