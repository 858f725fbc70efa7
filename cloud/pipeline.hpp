#pragma once
// The daemon's stages: each owns the blocks of its layer range on its device (immutable, shared
// by every session) and a StepRunner with that device's KV pool. One KvBlockAllocator, owned
// here, hands out block ids valid in every stage's pool, so a session's BlockTable describes its
// KV everywhere. Activations move device to device between stages.
//
// Not thread-safe: one compute thread calls forward(); the allocator belongs to that thread too.
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cloud/remote_stage.hpp"
#include "cloud/stage_plan.hpp"
#include "common/batch.hpp"
#include "common/kv_blocks.hpp"
#include "common/pieces.hpp"
#include "common/step_runner.hpp"

namespace duet::cloud {

struct Stage {
  StageSpec spec;  // spec.worker set: runs in that stage worker (no blocks, no runner here)
  c10::Device device = c10::Device(c10::kCPU);
  std::vector<std::unique_ptr<Block>> blocks;
  std::unique_ptr<StepRunner> runner;  // this stage's KV pool and CUDA graphs
  int64_t weight_bytes() const;
  int64_t kv_bytes_per_position() const;
};

// How many KV blocks the daemon keeps: what fits the budget over all stages, at most max_blocks
// (0: no cap; the daemon caps at what its sessions can ever use).
struct KvSizing {
  int64_t budget_bytes = int64_t(1) << 30;
  int64_t max_blocks = 0;
};

class Pipeline {
 public:
  // Plan items that name a worker run there (cluster must then give the front door's cluster
  // address); the rest load here.
  Pipeline(const Checkpoint& ckpt, const std::vector<StageSpec>& plan, c10::ScalarType dtype, KvSizing kv = {},
           const ClusterOptions& cluster = {});
  ~Pipeline();

  const std::vector<Stage>& stages() const { return stages_; }
  c10::Device first_device() const { return stages_.front().device; }
  c10::ScalarType dtype() const { return dtype_; }
  int64_t kv_bytes_per_position() const;  // all layers
  KvBlockAllocator& allocator() { return *allocator_; }
  const KvBlockAllocator& allocator() const { return *allocator_; }

  // x [T, H] on any device: the tokens of batch.rows in order -> the last stage's output for the
  // positions the rows ask for ([batch.outputs(), H], common/step_runner.hpp keep_outputs).
  // Tables must be ensure()d by allocator(); the caller records each row's new length after.
  // stage_time: when given, each stage's wall time (its input copy included) in plan order; on a
  // GPU the stage's device is synchronized before its clock stops (per-hop telemetry; with one
  // stage that costs nothing, the caller's copy to the host waits for it anyway).
  torch::Tensor forward(const StepBatch& batch, const torch::Tensor& x,
                        std::vector<std::chrono::nanoseconds>* stage_time = nullptr);

  // Two or more steps in flight (stages pipelined): submit() runs the local stages before the
  // workers and sends the step on; collect() takes the workers' output, runs the local stages
  // after, and returns what forward() would have. Tickets are collected in submit order. Steps in
  // flight together must not share a sequence (a row reads the KV its previous step wrote).
  // Without workers, submit() runs the whole step. The step keeps its own copy of the batch's
  // block tables: a session may close while its step is in flight (its blocks, reused by a later
  // step, are written in step order on every stage, so the later one's KV wins).
  int64_t submit(const StepBatch& batch, const torch::Tensor& x);
  torch::Tensor collect(int64_t ticket);

  // Workers: null without any. unavailable_reason() is empty when every stage can run; else a
  // sentence naming the missing worker (the engine refuses new sessions with it).
  RemoteChain* remote() { return chain_.get(); }
  std::string unavailable_reason() const { return chain_ ? chain_->unavailable_reason() : std::string(); }

  // The plan as rows (for /metrics) and as a table: worker, host, device, layers, weight bytes,
  // KV blocks and their bytes per stage.
  std::vector<StageRow> stage_rows() const;
  std::string describe() const;
  size_t graphs_captured() const;  // over every stage

 private:
  std::vector<Stage> stages_;
  c10::ScalarType dtype_;
  std::unique_ptr<KvBlockAllocator> allocator_;
  std::unique_ptr<RemoteChain> chain_;
  size_t chain_begin_ = 0, chain_end_ = 0;  // stages [begin, end) run in workers
  int64_t next_ticket_ = 0;
  // KV blocks written since the workers' current generation formed. A re-formed cluster may hold
  // a restarted worker whose pool is empty: a row may read only blocks written since (its session
  // replays otherwise), so a session that lived through a loss fails instead of reading zeros.
  std::vector<uint8_t> kv_fresh_;
  uint64_t kv_generation_ = 0;
  void check_kv_fresh(const StepBatch& batch);
  StepBatch chain_batch(const StepBatch& batch) const;
  struct Pending {
    int64_t ticket;
    std::vector<BlockTable> tables;  // batch.rows point here
    StepBatch batch;
    torch::Tensor y;  // set when no worker is involved
  };
  std::vector<Pending> pending_;
  torch::Tensor run_local(size_t begin, size_t end, const StepBatch& batch, torch::Tensor x,
                          std::vector<std::chrono::nanoseconds>* stage_time);
};

}  // namespace duet::cloud
