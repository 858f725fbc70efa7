#include "common/kv_pool.hpp"

#include <torch/torch.h>

namespace duet {

KvPool::KvPool(std::vector<KvShape> layers, int64_t block_size, int64_t blocks, c10::ScalarType dtype,
               c10::Device device)
    : shapes_(std::move(layers)), block_size_(block_size), dtype_(dtype), device_(device) {
  k_.resize(shapes_.size());
  v_.resize(shapes_.size());
  grow(blocks);
}

LayerKvView KvPool::layer(size_t i) const {
  const auto& s = shapes_.at(i);
  return {k_[i].view({blocks_ * block_size_, s.kv_heads, s.head_dim}),
          v_[i].view({blocks_ * block_size_, s.kv_heads, s.head_dim})};
}

int64_t KvPool::bytes_per_block() const {
  int64_t b = 0;
  for (const auto& s : shapes_) b += 2 * block_size_ * s.kv_heads * s.head_dim;
  return b * static_cast<int64_t>(c10::elementSize(dtype_));
}

bool KvPool::grow(int64_t blocks) {
  if (blocks <= blocks_) return false;
  auto opts = torch::TensorOptions().dtype(dtype_).device(device_);
  for (size_t i = 0; i < shapes_.size(); ++i) {
    for (auto* t : {&k_[i], &v_[i]}) {
      auto n = torch::zeros({blocks, block_size_, shapes_[i].kv_heads, shapes_[i].head_dim}, opts);
      if (t->defined() && blocks_ > 0) n.narrow(0, 0, blocks_).copy_(*t);
      *t = n;
    }
  }
  blocks_ = blocks;
  return true;
}

}  // namespace duet
