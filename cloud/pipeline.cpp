#include "cloud/pipeline.hpp"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>

#include "cloud/cluster_link.hpp"
#include "common/dtype.hpp"
#include "common/wire/tensor_frames.hpp"

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

Pipeline::Pipeline(const Checkpoint& ckpt, const std::vector<StageSpec>& plan, c10::ScalarType dtype, KvSizing kv,
                   const ClusterOptions& cluster)
    : dtype_(dtype) {
  bool any_worker = false;
  for (const auto& spec : plan) {
    Stage s;
    s.spec = spec;
    if (!spec.worker.empty()) {
      if (!any_worker) chain_begin_ = stages_.size();
      any_worker = true;
      chain_end_ = stages_.size() + 1;
      stages_.push_back(std::move(s));  // CPU: where its input is staged for the link
      continue;
    }
    s.device = parse_device(spec.device);
    LoadOptions o{dtype, s.device};
    for (int64_t i = spec.first; i < spec.last; ++i) s.blocks.push_back(load_block(ckpt, i, o));
    stages_.push_back(std::move(s));
  }
  if (stages_.empty()) throw std::invalid_argument("the stage plan is empty");
  // the workers' layers: KV bytes from the model's shape (they report theirs when they join)
  const auto& mc = ckpt.config();
  int64_t remote_layers = 0;
  for (const auto& s : stages_)
    if (!s.spec.worker.empty()) remote_layers += s.spec.last - s.spec.first;
  const int64_t remote_kv = remote_layers * 2 * mc.num_kv_heads * mc.head_dim * int64_t(c10::elementSize(dtype));
  int64_t blocks = KvBlockAllocator::blocks_in_budget(kv.budget_bytes, kv_bytes_per_position() + remote_kv);
  if (kv.max_blocks > 0) blocks = std::max<int64_t>(2, std::min(blocks, kv.max_blocks));
  allocator_ = std::make_unique<KvBlockAllocator>(blocks);
  if (any_worker) {
    check_cluster_address(cluster.address, "[stages] cluster_address (--cluster-address)");
    WorkerPlan wp;
    wp.model = model_fingerprint(ckpt);
    wp.dtype = dtype_name(dtype);
    wp.hidden = mc.hidden_size;
    wp.num_blocks = blocks;
    wp.block_size = allocator_->block_size();
    bool all_cuda = true;
    for (size_t i = chain_begin_; i < chain_end_; ++i) {
      const auto& sp = stages_[i].spec;
      const int rank = static_cast<int>(i - chain_begin_) + 1;
      const int next = i + 1 < chain_end_ ? rank + 1 : 0;
      wp.workers.push_back({sp.worker, sp.device, sp.first, sp.last, rank, rank - 1, next});
      wp.auto_layers = wp.auto_layers || sp.auto_layers;
      all_cuda = all_cuda && sp.device.rfind("cuda", 0) == 0;
    }
    // NCCL between GPUs: the workers' stages and the front door's end of the link all on CUDA
    // (the front door's stages, or its first device); Gloo otherwise (docs/STAGES.md)
    const bool front_cuda = (chain_begin_ > 0 && stages_[chain_begin_ - 1].device.is_cuda()) ||
                            (chain_begin_ == 0 && cluster.front_device.rfind("cuda", 0) == 0);
    wp.backend = all_cuda && front_cuda && nccl_available() ? "nccl" : "gloo";
    chain_ = std::make_unique<RemoteChain>(wp, cluster);
  }
  for (auto& s : stages_) {
    if (!s.spec.worker.empty()) continue;
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

Pipeline::~Pipeline() = default;

torch::Tensor Pipeline::run_local(size_t begin, size_t end, const StepBatch& batch, torch::Tensor x,
                                  std::vector<std::chrono::nanoseconds>* stage_time) {
  for (size_t i = begin; i < end; ++i) {
    auto& s = stages_[i];
    const auto t0 = std::chrono::steady_clock::now();
    x = x.to(s.device, dtype_);  // peer copy between GPUs; no-op within a device
    // the plan's last stage: only what the rows ask for
    x = s.runner->run(batch, x, i + 1 == stages_.size() ? StepOutput::asked : StepOutput::every_position);
    if (stage_time) {
      if (s.device.is_cuda()) torch::cuda::synchronize(s.device.index());
      stage_time->push_back(std::chrono::steady_clock::now() - t0);
    }
  }
  return x;
}

torch::Tensor Pipeline::forward(const StepBatch& batch, const torch::Tensor& x_in,
                                std::vector<std::chrono::nanoseconds>* stage_time) {
  torch::NoGradGuard no_grad;
  if (stage_time) stage_time->clear();
  if (!pending_.empty()) throw std::logic_error("Pipeline::forward while submitted steps are not collected");
  if (!chain_) return run_local(0, stages_.size(), batch, x_in, stage_time);
  check_kv_fresh(batch);
  auto x = run_local(0, chain_begin_, batch, x_in, stage_time);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t step = ++next_ticket_;
  chain_->submit(step, chain_batch(batch), x);
  x = chain_->collect(step);
  if (stage_time)  // the workers' stages as one span (their compute and the hops between them)
    for (size_t i = chain_begin_; i < chain_end_; ++i)
      stage_time->push_back(i + 1 == chain_end_ ? std::chrono::steady_clock::now() - t0 : std::chrono::nanoseconds(0));
  return run_local(chain_end_, stages_.size(), batch, x, stage_time);
}

// What the chain's last worker is asked to send back: the rows' outputs when it runs the plan's
// last stage, every position when stages of the front door follow it.
StepBatch Pipeline::chain_batch(const StepBatch& batch) const {
  if (chain_end_ == stages_.size()) return batch;
  StepBatch all = batch;
  for (auto& r : all.rows) r.out = -1;
  return all;
}

void Pipeline::check_kv_fresh(const StepBatch& batch) {
  const uint64_t g = chain_->generation();
  if (g != kv_generation_) {
    kv_generation_ = g;
    kv_fresh_.assign(static_cast<size_t>(allocator_->num_blocks()), 0);
  }
  const int64_t bs = allocator_->block_size();
  for (const auto& r : batch.rows) {
    const auto& ids = r.table->blocks;
    const size_t read = std::min(ids.size(), static_cast<size_t>(KvBlockAllocator::blocks_for(r.start, bs)));
    for (size_t k = 0; k < read; ++k)
      if (ids[k] >= 0 && ids[k] < static_cast<int32_t>(kv_fresh_.size()) && !kv_fresh_[size_t(ids[k])])
        throw StageUnavailable("this session's KV was written before the stage workers re-formed (generation " +
                               std::to_string(g) + "): a restarted worker lost it; open a new session and replay");
  }
  for (const auto& r : batch.rows)  // the step writes [start, start + n): those blocks hold this generation's KV
    for (size_t k = static_cast<size_t>(r.start / bs);
         k < std::min(r.table->blocks.size(), static_cast<size_t>(KvBlockAllocator::blocks_for(r.start + r.n, bs))); ++k)
      if (r.table->blocks[k] >= 0 && r.table->blocks[k] < static_cast<int32_t>(kv_fresh_.size()))
        kv_fresh_[size_t(r.table->blocks[k])] = 1;
}

int64_t Pipeline::submit(const StepBatch& batch, const torch::Tensor& x_in) {
  torch::NoGradGuard no_grad;
  const int64_t ticket = ++next_ticket_;
  if (!chain_) {
    pending_.push_back({ticket, {}, {}, run_local(0, stages_.size(), batch, x_in, nullptr)});
    return ticket;
  }
  check_kv_fresh(batch);
  auto x = run_local(0, chain_begin_, batch, x_in, nullptr);
  chain_->submit(ticket, chain_batch(batch), x);
  Pending p{ticket, {}, batch, {}};
  p.tables.reserve(batch.rows.size());
  for (auto& r : p.batch.rows) {
    p.tables.push_back(*r.table);
    r.table = &p.tables.back();  // reserved: no reallocation moves them
  }
  pending_.push_back(std::move(p));
  return ticket;
}

torch::Tensor Pipeline::collect(int64_t ticket) {
  torch::NoGradGuard no_grad;
  if (pending_.empty() || pending_.front().ticket != ticket)
    throw std::logic_error("Pipeline::collect: ticket " + std::to_string(ticket) + " is not the oldest in flight");
  Pending p = std::move(pending_.front());
  pending_.erase(pending_.begin());
  if (!chain_) return p.y;
  try {
    auto x = chain_->collect(ticket);
    return run_local(chain_end_, stages_.size(), p.batch, x, nullptr);
  } catch (const StageUnavailable&) {
    pending_.clear();  // the generation is gone: so are the steps after this one
    throw;
  }
}

std::vector<StageRow> Pipeline::stage_rows() const {
  const int64_t nb = allocator_->num_blocks();
  const auto workers = chain_ ? chain_->workers() : std::vector<RemoteWorker>{};
  std::vector<StageRow> rows;
  for (size_t i = 0; i < stages_.size(); ++i) {
    const auto& s = stages_[i];
    StageRow r;
    r.device = s.spec.device;
    r.first = s.spec.first;
    r.last = s.spec.last - 1;
    r.weight_bytes = s.weight_bytes();
    int64_t kv_pp = s.kv_bytes_per_position();
    if (!s.spec.worker.empty()) {
      const auto& w = workers.at(i - chain_begin_);
      r.worker = w.name;
      r.host = w.host;  // "-" until it joined
      r.weight_bytes = w.weight_bytes;
      kv_pp = w.kv_bytes_per_position;
    }
    r.kv_bytes = kv_pp < 0 ? -1 : kv_pp * allocator_->block_size() * nb;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string Pipeline::describe() const {
  const int64_t nb = allocator_->num_blocks();
  std::string out;
  char line[320];
  std::snprintf(line, sizeof line, "%-6s %-12s %-16s %-10s %-8s %12s %10s %12s\n", "stage", "worker", "host", "device",
                "layers", "weights MiB", "KV blocks", "KV MiB");
  out += line;
  const auto rows = stage_rows();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const double w_mib = r.weight_bytes < 0 ? -1 : r.weight_bytes / 1048576.0;
    const double kv_mib = r.kv_bytes < 0 ? -1 : r.kv_bytes / 1048576.0;
    std::snprintf(line, sizeof line, "%-6zu %-12s %-16s %-10s %3lld-%-4lld %12.2f %10lld %12.2f\n", i, r.worker.c_str(),
                  r.host.c_str(), r.device.c_str(), static_cast<long long>(r.first), static_cast<long long>(r.last),
                  w_mib, static_cast<long long>(nb), kv_mib);
    out += line;
  }
  std::snprintf(line, sizeof line, "KV: %lld blocks of %lld positions (block 0 is scratch), %lld positions in all\n",
                static_cast<long long>(nb), static_cast<long long>(allocator_->block_size()),
                static_cast<long long>(allocator_->usable_blocks() * allocator_->block_size()));
  out += line;
  if (chain_) {
    out += "workers: " + std::string(chain_->backend()) + ", plan fingerprint " +
           std::to_string(chain_->plan_fingerprint()) + " (-1: not joined yet)\n";
    if (stages_[chain_begin_].spec.auto_layers)
      out += "workers' layers " + std::to_string(stages_[chain_begin_].spec.first) + "-" +
             std::to_string(stages_[chain_end_ - 1].spec.last - 1) +
             ": split by the memory each worker offers as it joins (an even split shown until then)\n";
  }
  return out;
}

size_t Pipeline::graphs_captured() const {
  size_t n = 0;
  for (const auto& s : stages_)
    if (s.runner) n += s.runner->graphs_captured();
  return n;
}

}  // namespace duet::cloud
