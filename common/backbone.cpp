#include "common/backbone.hpp"

#include <torch/torch.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace duet {

LocalBackbone::LocalBackbone(const Checkpoint& ckpt, const LoadOptions& opts, int64_t max_positions, int64_t first,
                             int64_t last)
    : device_(opts.device),
      max_positions_(max_positions),
      allocator_(KvBlockAllocator::blocks_for(std::max<int64_t>(max_positions, 1)) + 1) {
  if (last < 0) last = ckpt.config().num_layers;
  for (int64_t i = first; i < last; ++i) blocks_.push_back(load_block(ckpt, i, opts));
  start_runner(opts);
}

LocalBackbone::LocalBackbone(std::vector<std::unique_ptr<Block>> blocks, const LoadOptions& opts,
                             int64_t max_positions)
    : device_(opts.device),
      max_positions_(max_positions),
      blocks_(std::move(blocks)),
      allocator_(KvBlockAllocator::blocks_for(std::max<int64_t>(max_positions, 1)) + 1) {
  start_runner(opts);
}

void LocalBackbone::start_runner(const LoadOptions& opts) {
  std::vector<const Block*> ptrs;
  for (const auto& b : blocks_) ptrs.push_back(b.get());
  // storage for 256 positions first: a model's max_positions can be far more than a run uses
  const int64_t initial = KvBlockAllocator::blocks_for(std::min<int64_t>(256, std::max<int64_t>(max_positions_, 1))) + 1;
  runner_ = std::make_unique<StepRunner>(std::move(ptrs), allocator_.num_blocks(), initial, opts.dtype, device_);
}

torch::Tensor LocalBackbone::forward(const torch::Tensor& hidden, int64_t start, bool last_only) {
  torch::NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = hidden.size(0);
  if (start < 0 || start > table_.length)
    throw std::invalid_argument("KV cache write at position " + std::to_string(start) + " but the cache holds " +
                                std::to_string(table_.length) + " positions (no gaps allowed)");
  if (start + n > max_positions_ || !allocator_.ensure(table_, start + n))
    throw std::length_error("KV cache: positions up to " + std::to_string(start + n) + " exceed the limit of " +
                            std::to_string(max_positions_));
  StepBatch batch;
  batch.rows.push_back({&table_, start, n});
  batch.rows.back().out = last_only ? 1 : -1;
  auto x = runner_->run(batch, hidden.to(device_), StepOutput::asked);
  table_.length = start + n;
  allocator_.truncate(table_, start + n);  // a rewind frees the blocks past the new end
  last_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return x;
}

void LocalBackbone::reset() { allocator_.release(table_); }

int64_t LocalBackbone::weight_bytes() const {
  int64_t b = 0;
  for (const auto& blk : blocks_) b += blk->weight_bytes();
  return b;
}

}  // namespace duet
