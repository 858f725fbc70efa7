#include "common/decode_graph.hpp"

#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
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

torch::Tensor Block::forward_static(const torch::Tensor&, LayerKvCache&, const StaticStep&) const {
  throw std::logic_error("this block has no static decode path (supports_static_decode is false)");
}

namespace {

// Blocks over one position whose value lives in `pos`; `positions` is arange(capacity).
torch::Tensor run_static(const std::vector<const Block*>& blocks, const std::vector<LayerKvCache*>& caches,
                         const torch::Tensor& x, const torch::Tensor& pos, const torch::Tensor& positions) {
  StaticStep st;
  st.pos = pos;
  st.mask = torch::zeros({1, positions.size(0)}, x.options())
                .masked_fill_(positions.gt(pos).unsqueeze(0), -std::numeric_limits<double>::infinity());
  auto h = x;
  for (size_t i = 0; i < blocks.size(); ++i) h = blocks[i]->forward_static(h, *caches[i], st);
  return h;
}

// Makes room for position `start` in every cache; false when some block cannot go static.
bool prepare(const std::vector<const Block*>& blocks, const std::vector<LayerKvCache*>& caches, int64_t start) {
  if (blocks.empty() || blocks.size() != caches.size()) return false;
  for (auto* c : caches) c->prepare_static(start);
  const int64_t cap = caches.front()->capacity();
  for (size_t i = 0; i < blocks.size(); ++i)
    if (caches[i]->capacity() != cap || !blocks[i]->supports_static_decode(cap)) return false;
  return true;
}

}  // namespace

torch::Tensor static_decode_step(const std::vector<const Block*>& blocks, const std::vector<LayerKvCache*>& caches,
                                 const torch::Tensor& x, int64_t start) {
  torch::NoGradGuard no_grad;
  if (!prepare(blocks, caches, start)) throw std::invalid_argument("these blocks cannot decode statically");
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(x.device());
  auto out = run_static(blocks, caches, x, torch::full({1}, start, opts),
                        torch::arange(caches.front()->capacity(), opts));
  for (auto* c : caches) c->commit(start + 1);
  return out;
}

struct DecodeGraphs::Graph {
  std::vector<const void*> key;  // capacity, then every cache's K and V buffer
  torch::Tensor x, pos, positions, out;  // static input/output buffers the graph reads and writes
#if DUET_HAVE_CUDA_GRAPHS
  at::cuda::CUDAGraph graph;
#endif
};

DecodeGraphs::DecodeGraphs(size_t max_graphs) : max_graphs_(max_graphs) {}
DecodeGraphs::~DecodeGraphs() = default;
DecodeGraphs::DecodeGraphs(DecodeGraphs&&) noexcept = default;
DecodeGraphs& DecodeGraphs::operator=(DecodeGraphs&&) noexcept = default;

bool DecodeGraphs::available() {
  if (!DUET_HAVE_CUDA_GRAPHS) return false;
  const char* env = std::getenv("DUET_CUDA_GRAPHS");
  return !(env && std::string(env) == "0");
}

torch::Tensor DecodeGraphs::try_step(const std::vector<const Block*>& blocks, const std::vector<LayerKvCache*>& caches,
                                     const torch::Tensor& x, int64_t start) {
#if DUET_HAVE_CUDA_GRAPHS
  static const bool on = available();
  if (!on || failed_ || !x.is_cuda() || x.dim() != 2 || x.size(0) != 1) return {};
  torch::NoGradGuard no_grad;
  // a stage on another GPU: replay() and the streams below use the current device
  c10::cuda::CUDAGuard device_guard(x.device());
  if (!prepare(blocks, caches, start)) return {};
  const int64_t cap = caches.front()->capacity();
  std::vector<const void*> key{reinterpret_cast<const void*>(cap)};
  for (auto* c : caches) {
    key.push_back(c->all_keys().data_ptr());
    key.push_back(c->all_values().data_ptr());
  }
  torch::Tensor out;
  for (size_t i = 0; i < graphs_.size(); ++i) {
    if (graphs_[i]->key != key) continue;
    auto g = std::move(graphs_[i]);  // move to the back: most recently used
    graphs_.erase(graphs_.begin() + static_cast<std::ptrdiff_t>(i));
    g->x.copy_(x);
    g->pos.fill_(start);
    g->graph.replay();
    out = g->out.clone();
    graphs_.push_back(std::move(g));
    break;
  }
  if (!out.defined()) {
    // First step with these buffers: run it eagerly on a side stream (a warm-up, and this step's
    // real result), then capture the same step there.
    auto g = std::make_unique<Graph>();
    g->key = key;
    auto lopts = torch::TensorOptions().dtype(torch::kLong).device(x.device());
    g->x = x.clone();
    g->pos = torch::full({1}, start, lopts);
    g->positions = torch::arange(cap, lopts);
    auto cur = at::cuda::getCurrentCUDAStream(x.device().index());
    auto side = at::cuda::getStreamFromPool(false, x.device().index());
    at::cuda::CUDAEvent ready;
    ready.record(cur);
    ready.block(side);
    bool captured = false;
    {
      c10::cuda::CUDAStreamGuard guard(side);
      out = run_static(blocks, caches, g->x, g->pos, g->positions);
      try {
        g->graph.capture_begin();
        g->out = run_static(blocks, caches, g->x, g->pos, g->positions);
        g->graph.capture_end();
        captured = true;
      } catch (const std::exception& e) {
        // leave the stream out of capture mode, then run eagerly from now on
        cudaGraph_t partial = nullptr;
        if (cudaStreamEndCapture(side.stream(), &partial) == cudaSuccess && partial) cudaGraphDestroy(partial);
        (void)cudaGetLastError();
        std::fprintf(stderr, "duet: CUDA graph capture failed, decoding eagerly from now on: %s\n", e.what());
        failed_ = true;
      }
    }
    side.synchronize();  // rare (once per capacity and session): keep stream bookkeeping simple
    if (!captured) {
      for (auto* c : caches) c->commit(start + 1);
      return out;  // the warm-up already computed this step
    }
    ++captures_;
    if (graphs_.size() >= max_graphs_) graphs_.erase(graphs_.begin());
    graphs_.push_back(std::move(g));
  }
  for (auto* c : caches) c->commit(start + 1);
  return out;
#else
  (void)blocks;
  (void)caches;
  (void)x;
  (void)start;
  return {};
#endif
}

torch::Tensor run_blocks(const std::vector<std::unique_ptr<Block>>& blocks, std::vector<LayerKvCache>& caches,
                         DecodeGraphs& graphs, const torch::Tensor& x, int64_t start) {
  if (x.size(0) == 1 && x.is_cuda()) {
    std::vector<const Block*> bs;
    std::vector<LayerKvCache*> cs;
    for (size_t i = 0; i < blocks.size(); ++i) {
      bs.push_back(blocks[i].get());
      cs.push_back(&caches[i]);
    }
    auto y = graphs.try_step(bs, cs, x, start);
    if (y.defined()) return y;
  }
  auto y = x;
  for (size_t i = 0; i < blocks.size(); ++i) y = blocks[i]->forward(y, caches[i], start);
  return y;
}

}  // namespace duet
