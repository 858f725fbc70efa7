#include "common/step_runner.hpp"

#include "common/step_cancel.hpp"

#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#if defined(DUET_WITH_CUDA) && __has_include(<ATen/cuda/CUDAGraph.h>)
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#define DUET_HAVE_CUDA_GRAPHS 1
#else
#define DUET_HAVE_CUDA_GRAPHS 0
#endif

namespace duet {

struct StepRunner::Graphs {
  struct Graph {
    int64_t rows = 0, keys = 0;  // the bucket: the key of this graph
    torch::Tensor x, out;        // [rows, H] static input and output
    AttentionInput in;           // static index buffers the graph reads
#if DUET_HAVE_CUDA_GRAPHS
    at::cuda::CUDAGraph graph;
#endif
  };
  std::vector<std::unique_ptr<Graph>> lru;  // most recently used last
  size_t captures = 0;
  bool failed = false;  // a capture failed: eager from then on
#if DUET_HAVE_CUDA_GRAPHS
  // One memory pool for every graph of the stage: a graph's intermediates are dead once its
  // output is copied out (right after each replay, on the same stream), so graphs can share them
  // instead of each holding its own (a step at 128 rows x 4096 keys gathers hundreds of MB).
  std::optional<decltype(at::cuda::graph_pool_handle())> mempool;
#endif
};

StepRunner::StepRunner(std::vector<const Block*> blocks, int64_t max_blocks, int64_t initial_blocks,
                       c10::ScalarType dtype, c10::Device device, StepRunnerOptions options, int64_t block_size)
    : blocks_(std::move(blocks)), max_blocks_(max_blocks), options_(options), graphs_(std::make_unique<Graphs>()) {
  std::vector<KvShape> shapes;
  bool mixed = false;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    shapes.push_back(blocks_[i]->kv_shape());
    if (i == 0) window_ = blocks_[i]->sliding_window();
    else if (blocks_[i]->sliding_window() != window_) mixed = true;
  }
  // Layers with different windows (Gemma's local and global ones): the step's input covers every
  // key and each windowed layer masks its own (attend()); one window for all: the input has it.
  if (mixed) window_ = 0;
  pool_ = KvPool(std::move(shapes), block_size, std::min(std::max<int64_t>(initial_blocks, 2), max_blocks), dtype,
                 device);
}

StepRunner::~StepRunner() = default;
StepRunner::StepRunner(StepRunner&&) noexcept = default;
StepRunner& StepRunner::operator=(StepRunner&&) noexcept = default;

size_t StepRunner::graphs_captured() const { return graphs_->captures; }

bool StepRunner::graphs_available() {
  if (!DUET_HAVE_CUDA_GRAPHS) return false;
  const char* env = std::getenv("DUET_CUDA_GRAPHS");
  return !(env && std::string(env) == "0");
}

int64_t StepRunner::batch_bucket(int64_t rows) {
  if (rows > kMaxBatchBucket) return 0;
  int64_t b = 1;
  while (b < rows) b *= 2;
  return b;
}

int64_t StepRunner::context_bucket(int64_t keys) {
  if (keys > 1024) return (keys + 1023) / 1024 * 1024;
  int64_t b = 64;
  while (b < keys) b *= 2;
  return b;
}

void StepRunner::fit_pool(int64_t max_block) {
  const int64_t need = max_block + 1;
  if (need > max_blocks_)
    throw std::out_of_range("a step names KV block " + std::to_string(max_block) + " but the pool has " +
                            std::to_string(max_blocks_) + " blocks");
  if (need <= pool_.blocks()) return;
  graphs_->lru.clear();  // they captured the old buffers
  pool_.grow(std::min(max_blocks_, std::max(need, 2 * pool_.blocks())));
}

namespace {
// Where each row's last `out` positions sit in the step's [T, H], in row order.
std::vector<int64_t> output_positions(const StepBatch& batch) {
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(batch.outputs()));
  int64_t off = 0;
  for (const auto& r : batch.rows) {
    for (int64_t i = r.n - r.outputs(); i < r.n; ++i) rows.push_back(off + i);
    off += r.n;
  }
  return rows;
}
}  // namespace

torch::Tensor keep_outputs(const StepBatch& batch, const torch::Tensor& y) {
  if (batch.outputs() == batch.tokens()) return y;
  if (batch.tokens() != y.size(0))
    throw std::invalid_argument("keep_outputs: the step has " + std::to_string(batch.tokens()) + " positions, its output " +
                                std::to_string(y.size(0)) + " rows");
  const auto rows = output_positions(batch);
  if (rows.empty()) return y.narrow(0, 0, 0);
  auto index = torch::tensor(rows, torch::kLong);
  return y.index_select(0, index.to(y.device(), /*non_blocking=*/true));
}

torch::Tensor StepRunner::run_blocks(const torch::Tensor& x, const AttentionInput& in, const torch::Tensor& keep) {
  in.reset_memo();
  auto h = x;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    throw_if_step_cancelled();  // a stopping daemon does not wait for the rest of a long step
    h = blocks_[i]->forward(h, in, pool_.layer(i), i + 1 == blocks_.size() ? keep : torch::Tensor());
  }
  return h;
}

torch::Tensor StepRunner::run(const StepBatch& batch, const torch::Tensor& x, StepOutput which) {
  torch::NoGradGuard no_grad;
  batch.validate(pool_.block_size(), max_blocks_);
  if (x.dim() != 2 || x.size(0) != batch.tokens())
    throw std::invalid_argument("a step of " + std::to_string(batch.tokens()) + " tokens got hidden states of shape " +
                                c10::str(x.sizes()));
  const int64_t B = static_cast<int64_t>(batch.rows.size());
  const bool pick = which == StepOutput::asked && batch.outputs() != batch.tokens();
#if DUET_HAVE_CUDA_GRAPHS
  // a stage on another GPU: index tensors, replay() and the streams below use the current device
  std::optional<c10::cuda::CUDAGuard> device_guard;
  if (x.is_cuda()) device_guard.emplace(x.device());
  static const bool graphs_on = graphs_available();
  const bool graph = graphs_on && x.is_cuda() && !graphs_->failed;
#else
  const bool graph = false;
#endif
  if (batch.all_decode() && B <= kMaxBatchBucket && (graph || options_.pad_decode)) {
    auto y = run_decode_padded(batch, x, graph);
    return pick ? keep_outputs(batch, y) : y;
  }
  auto in = build_attention_input(batch, pool_.block_size(), window_, x.device());
  fit_pool(in.max_block);
  if (!pick) return run_blocks(x, in, {});
  // the last layer past its attention runs for the asked positions only; with none asked, for
  // one (no kernel sees an empty tensor), dropped here
  auto rows = output_positions(batch);
  const bool none = rows.empty();
  if (none) rows.push_back(batch.tokens() - 1);
  auto y = run_blocks(x, in, torch::tensor(rows, torch::kLong).to(x.device(), /*non_blocking=*/true));
  return none ? y.narrow(0, 0, 0) : y;
}

// An all-decode step padded to its bucket: a CUDA graph's replay (captured on the bucket's first
// step), or the same arithmetic eagerly (tests, or graphs off) -> every row's output.
torch::Tensor StepRunner::run_decode_padded(const StepBatch& batch, const torch::Tensor& x, bool graph) {
  const int64_t B = static_cast<int64_t>(batch.rows.size()), bs = pool_.block_size();
  int64_t keys = 0;
  for (const auto& r : batch.rows) keys = std::max(keys, decode_keys(r.start, window_));
  const DecodePadding pad{batch_bucket(B), context_bucket(keys)};
  auto in = build_attention_input(batch, bs, window_, x.device(), pad);
  fit_pool(in.max_block);
#if DUET_HAVE_CUDA_GRAPHS
  if (graph) {
    auto& lru = graphs_->lru;
    for (size_t i = 0; i < lru.size(); ++i) {
      if (lru[i]->rows != pad.rows || lru[i]->keys != pad.keys) continue;
      auto g = std::move(lru[i]);  // move to the back: most recently used
      lru.erase(lru.begin() + static_cast<std::ptrdiff_t>(i));
      g->in.positions.copy_(in.positions);
      g->in.write_slots.copy_(in.write_slots);
      g->in.decode_slots.copy_(in.decode_slots);
      g->in.decode_mask.copy_(in.decode_mask);
      g->in.paged.tables.copy_(in.paged.tables);  // the CUDA kernels' view of the same rows
      g->in.paged.key_offset.copy_(in.paged.key_offset);
      g->in.paged.key_len.copy_(in.paged.key_len);
      g->x.narrow(0, 0, B).copy_(x);
      g->graph.replay();
      auto out = g->out.narrow(0, 0, B).clone();  // before any other replay reuses the shared pool
      lru.push_back(std::move(g));
      return out;
    }
    // First step of this bucket: run it eagerly on a side stream (a warm-up, and this step's real
    // result), then capture the same step there.
    auto g = std::make_unique<Graphs::Graph>();
    g->rows = pad.rows;
    g->keys = pad.keys;
    g->in = in;
    g->in.positions = in.positions.clone();
    g->in.write_slots = in.write_slots.clone();
    g->in.decode_slots = in.decode_slots.clone();
    g->in.decode_mask = in.decode_mask.clone();
    g->in.paged.tables = in.paged.tables.clone();
    g->in.paged.key_offset = in.paged.key_offset.clone();
    g->in.paged.key_len = in.paged.key_len.clone();
    g->x = torch::zeros({pad.rows, x.size(1)}, x.options());  // padded rows stay zero: finite
    g->x.narrow(0, 0, B).copy_(x);
    const auto dev = x.device().index();
    auto cur = at::cuda::getCurrentCUDAStream(dev);
    auto side = at::cuda::getStreamFromPool(false, dev);
    at::cuda::CUDAEvent ready;
    ready.record(cur);
    ready.block(side);
    if (!graphs_->mempool) graphs_->mempool = at::cuda::graph_pool_handle();
    torch::Tensor out;
    bool captured = false;
    {
      c10::cuda::CUDAStreamGuard guard(side);
      out = run_blocks(g->x, g->in, {}).narrow(0, 0, B);
      try {
        const StepCancelScope no_cancel_in_capture(nullptr);  // a throw here would spoil the graph
        g->graph.capture_begin(*graphs_->mempool);
        g->out = run_blocks(g->x, g->in, {});
        g->graph.capture_end();
        captured = true;
      } catch (const std::exception& e) {
        // leave the stream out of capture mode, then run eagerly from now on
        cudaGraph_t partial = nullptr;
        if (cudaStreamEndCapture(side.stream(), &partial) == cudaSuccess && partial) cudaGraphDestroy(partial);
        (void)cudaGetLastError();
        std::fprintf(stderr, "duet: CUDA graph capture failed, decoding eagerly from now on: %s\n", e.what());
        graphs_->failed = true;
      }
    }
    side.synchronize();  // rare (once per bucket): keep stream bookkeeping simple
    if (captured) {
      ++graphs_->captures;
      if (lru.size() >= options_.max_graphs && !lru.empty()) lru.erase(lru.begin());
      lru.push_back(std::move(g));
    }
    return out;  // the warm-up computed this step
  }
#endif
  // the graph's arithmetic without a graph: padded rows and keys, eagerly
  auto xp = torch::zeros({pad.rows, x.size(1)}, x.options());
  xp.narrow(0, 0, B).copy_(x);
  return run_blocks(xp, in, {}).narrow(0, 0, B);
}

}  // namespace duet
