#pragma once
// Runs one stage's blocks (a layer range on one device, with its KV pool) over a StepBatch.
//
// Eager for prefill and mixed steps and on CPU. An all-decode step on CUDA replays a CUDA graph:
// a decode step of a small model is hundreds of small kernels, and launched one by one from the
// host they cost more than the weights take to read. A graph fixes every shape and address it
// touches, so the step is padded to a bucket (rows in {1, 2, 4, ..., 128}, keys per row in
// context_bucket()) and graphs are keyed by (rows, keys) only: the KV pool's buffers never
// change (unless it grows, which drops every graph), so sessions that come and go replay the
// same few graphs. Padded rows write into the scratch block and are dropped from the output.
//
// Switch graphs off with DUET_CUDA_GRAPHS=0. Not thread-safe: one compute thread runs steps.
#include <torch/types.h>

#include <memory>
#include <vector>

#include "common/pieces.hpp"

namespace duet {

struct StepRunnerOptions {
  size_t max_graphs = 24;   // per stage, least recently used dropped first
  bool pad_decode = false;  // pad all-decode steps to their bucket also when running eagerly (tests)
};

// y [T, H] of the plan's last stage -> the rows the batch asks for ([outputs(), H], row order,
// each row's last `out` positions), gathered where y is: a prompt chunk's hidden states are not
// copied to the host or sent back whole. y itself when every position is asked for.
torch::Tensor keep_outputs(const StepBatch& batch, const torch::Tensor& y);

enum class StepOutput { every_position, asked };

class StepRunner {
 public:
  // The blocks (not owned; they outlive the runner) of one device. The pool starts with
  // `initial_blocks` blocks of storage and grows on demand up to `max_blocks` (the allocator's
  // num_blocks). Blocks may differ in their sliding windows (each masks its own).
  StepRunner(std::vector<const Block*> blocks, int64_t max_blocks, int64_t initial_blocks, c10::ScalarType dtype,
             c10::Device device, StepRunnerOptions options = {}, int64_t block_size = kKvBlockSize);
  ~StepRunner();
  StepRunner(StepRunner&&) noexcept;
  StepRunner& operator=(StepRunner&&) noexcept;

  // x [T, H] on this device: the tokens of batch.rows in order -> [T, H] (a tensor of its own),
  // every position's output (a stage others follow), or with StepOutput::asked (the plan's last
  // stage) the rows the batch asks for, as keep_outputs gives them: the last layer past its
  // attention then runs for those positions only.
  torch::Tensor run(const StepBatch& batch, const torch::Tensor& x, StepOutput which = StepOutput::every_position);

  const KvPool& pool() const { return pool_; }
  c10::Device device() const { return pool_.device(); }
  size_t graphs_captured() const;  // captures so far (each costs a warm-up step)

  // True when this build can capture CUDA graphs and DUET_CUDA_GRAPHS is not "0".
  static bool graphs_available();
  static constexpr int64_t kMaxBatchBucket = 128;
  static int64_t batch_bucket(int64_t rows);  // next of 1, 2, 4, ..., 128; 0 above 128
  static int64_t context_bucket(int64_t keys);  // powers of two from 64 up to 1024, then multiples of 1024

 private:
  struct Graphs;
  torch::Tensor run_blocks(const torch::Tensor& x, const AttentionInput& in, const torch::Tensor& keep);
  torch::Tensor run_decode_padded(const StepBatch& batch, const torch::Tensor& x, bool graph);
  void fit_pool(int64_t max_block);

  std::vector<const Block*> blocks_;
  KvPool pool_;
  int64_t max_blocks_ = 0, window_ = 0;
  StepRunnerOptions options_;
  std::unique_ptr<Graphs> graphs_;
};

}  // namespace duet
