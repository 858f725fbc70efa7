#include "cloud/pipeline.hpp"

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

Pipeline::Pipeline(const Checkpoint& ckpt, const std::vector<StageSpec>& plan, c10::ScalarType dtype) : dtype_(dtype) {
  for (const auto& spec : plan) {
    Stage s;
    s.spec = spec;
    s.device = parse_device(spec.device);
    LoadOptions o{dtype, s.device};
    for (int64_t i = spec.first; i < spec.last; ++i) s.blocks.push_back(load_block(ckpt, i, o));
    stages_.push_back(std::move(s));
    graphs_.emplace_back(8);  // a few sessions' graphs per stage
  }
  if (stages_.empty()) throw std::invalid_argument("the stage plan is empty");
}

int64_t Pipeline::kv_bytes_per_position() const {
  int64_t b = 0;
  for (const auto& s : stages_) b += s.kv_bytes_per_position();
  return b;
}

SequenceCache Pipeline::make_cache(int64_t max_positions) const {
  SequenceCache c(stages_.size());
  for (size_t i = 0; i < stages_.size(); ++i)
    for (const auto& blk : stages_[i].blocks) c[i].push_back(blk->make_cache(max_positions));
  return c;
}

torch::Tensor Pipeline::forward(const torch::Tensor& x_in, SequenceCache& cache, int64_t start) const {
  torch::NoGradGuard no_grad;
  auto x = x_in;
  for (size_t s = 0; s < stages_.size(); ++s) {
    x = x.to(stages_[s].device, dtype_);  // peer copy between GPUs; no-op within a device
    x = run_blocks(stages_[s].blocks, cache[s], graphs_[s], x, start);
  }
  return x;
}

std::string Pipeline::describe(int64_t kv_budget_bytes) const {
  const int64_t per_pos = kv_bytes_per_position();
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-6s %-10s %-8s %14s %14s\n", "stage", "device", "layers", "weights MiB", "KV budget MiB");
  out += line;
  for (size_t i = 0; i < stages_.size(); ++i) {
    const auto& s = stages_[i];
    const double share = per_pos > 0 ? double(s.kv_bytes_per_position()) / per_pos : 0.0;
    std::snprintf(line, sizeof line, "%-6zu %-10s %3lld-%-4lld %14.2f %14.2f\n", i, s.spec.device.c_str(),
                  static_cast<long long>(s.spec.first), static_cast<long long>(s.spec.last - 1),
                  s.weight_bytes() / 1048576.0, kv_budget_bytes * share / 1048576.0);
    out += line;
  }
  return out;
}

}  // namespace duet::cloud
