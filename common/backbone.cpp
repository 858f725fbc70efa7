#include "common/backbone.hpp"

#include <torch/torch.h>

#include <chrono>

namespace duet {

LocalBackbone::LocalBackbone(const Checkpoint& ckpt, const LoadOptions& opts, int64_t max_positions, int64_t first,
                             int64_t last)
    : device_(opts.device) {
  if (last < 0) last = ckpt.config().num_layers;
  for (int64_t i = first; i < last; ++i) {
    blocks_.push_back(load_block(ckpt, i, opts));
    caches_.push_back(blocks_.back()->make_cache(max_positions));
  }
}

torch::Tensor LocalBackbone::forward(const torch::Tensor& hidden, int64_t start, bool last_only) {
  torch::NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  auto x = run_blocks(blocks_, caches_, graphs_, hidden.to(device_), start);
  if (last_only) x = x.narrow(0, x.size(0) - 1, 1);
  last_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return x;
}

void LocalBackbone::reset() {
  for (auto& c : caches_) c.clear();
}

int64_t LocalBackbone::weight_bytes() const {
  int64_t b = 0;
  for (const auto& blk : blocks_) b += blk->weight_bytes();
  return b;
}

}  // namespace duet
