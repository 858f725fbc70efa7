#include "cloud/pipeline.hpp"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>

#include "common/dtype.hpp"

namespace duet::cloud {

int64_t Stage::weight_bytes() const {
  int64_t b = 0;
  for (const auto& blk : blocks) b += blk->weight_bytes();
  return b;
}

int64_t Stage::kv_bytes_per_position() const {
  int64_t b = 0;
  for (const auto& blk : blocks) b += blk->kv_bytes_per_position();
  return b;
}

Pipeline::Pipeline(const Checkpoint& ckpt, const std::vector<StageSpec>& plan, c10::ScalarType dtype, KvSizing kv)
    : dtype_(dtype) {
  for (const auto& spec : plan) {
    Stage s;
    s.spec = spec;
    s.device = parse_device(spec.device);
    LoadOptions o{dtype, s.device};
    for (int64_t i = spec.first; i < spec.last; ++i) s.blocks.push_back(load_block(ckpt, i, o));
    stages_.push_back(std::move(s));
  }
  if (stages_.empty()) throw std::invalid_argument("the stage plan is empty");
  int64_t blocks = KvBlockAllocator::blocks_in_budget(kv.budget_bytes, kv_bytes_per_position());
  if (kv.max_blocks > 0) blocks = std::max<int64_t>(2, std::min(blocks, kv.max_blocks));
  allocator_ = std::make_unique<KvBlockAllocator>(blocks);
  for (auto& s : stages_) {
    std::vector<const Block*> ptrs;
    for (const auto& b : s.blocks) ptrs.push_back(b.get());
    // GPU: the whole pool now, so that running out of memory shows at start, not mid-service (and
    // growing would need old + new at once). CPU: grown on demand (tests start many daemons).
    const int64_t initial = s.device.is_cuda() ? blocks : 64;
    s.runner = std::make_unique<StepRunner>(std::move(ptrs), blocks, initial, dtype, s.device);
  }
}

int64_t Pipeline::kv_bytes_per_position() const {
  int64_t b = 0;
  for (const auto& s : stages_) b += s.kv_bytes_per_position();
  return b;
}

torch::Tensor Pipeline::forward(const StepBatch& batch, const torch::Tensor& x_in,
                                std::vector<std::chrono::nanoseconds>* stage_time) {
  torch::NoGradGuard no_grad;
  auto x = x_in;
  if (stage_time) stage_time->clear();
  for (auto& s : stages_) {
    const auto t0 = std::chrono::steady_clock::now();
    x = x.to(s.device, dtype_);  // peer copy between GPUs; no-op within a device
    x = s.runner->run(batch, x);
    if (stage_time) {
      if (s.device.is_cuda()) torch::cuda::synchronize(s.device.index());
      stage_time->push_back(std::chrono::steady_clock::now() - t0);
    }
  }
  return x;
}

std::string Pipeline::describe() const {
  const int64_t nb = allocator_->num_blocks();
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-6s %-10s %-8s %12s %10s %12s\n", "stage", "device", "layers", "weights MiB",
                "KV blocks", "KV MiB");
  out += line;
  for (size_t i = 0; i < stages_.size(); ++i) {
    const auto& s = stages_[i];
    const double kv_mib = double(s.kv_bytes_per_position()) * allocator_->block_size() * nb / 1048576.0;
    std::snprintf(line, sizeof line, "%-6zu %-10s %3lld-%-4lld %12.2f %10lld %12.2f\n", i, s.spec.device.c_str(),
                  static_cast<long long>(s.spec.first), static_cast<long long>(s.spec.last - 1),
                  s.weight_bytes() / 1048576.0, static_cast<long long>(nb), kv_mib);
    out += line;
  }
  std::snprintf(line, sizeof line, "KV: %lld blocks of %lld positions (block 0 is scratch), %lld positions in all\n",
                static_cast<long long>(nb), static_cast<long long>(allocator_->block_size()),
                static_cast<long long>(allocator_->usable_blocks() * allocator_->block_size()));
  out += line;
  return out;
}

size_t Pipeline::graphs_captured() const {
  size_t n = 0;
  for (const auto& s : stages_) n += s.runner->graphs_captured();
  return n;
}

}  // namespace duet::cloud
