#pragma once
// A KV pool with random histories behind shuffled block tables, and one attention layer run on
// it through attend() with duet's CUDA kernels on or off (the LibTorch path is the reference).
// Shared by the gpu tests and the kernel benchmark.
#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "common/attention.hpp"
#include "common/cuda/torch_kernels.hpp"
#include "common/kv_pool.hpp"

namespace duet::gpu_test {

struct Heads {
  int64_t q = 8, kv = 2, d = 64;
};

// `lengths[i]` positions per sequence (history + the tokens of this step), blocks shuffled.
// stale: every slot starts NaN (another tenant's leftovers), and only the histories are written.
struct PagedWorld {
  PagedWorld(const std::vector<int64_t>& lengths, Heads h, c10::ScalarType dt, bool stale, uint32_t seed = 1)
      : heads(h), dtype(dt) {
    const int64_t bs = kKvBlockSize;
    int64_t need = 1;
    for (auto n : lengths) need += KvBlockAllocator::blocks_for(n, bs);
    const int64_t blocks = need + 3;  // a few never used
    pool = KvPool({{h.kv, h.d}}, bs, blocks, dt, c10::Device(c10::kCUDA));
    std::vector<int32_t> ids(static_cast<size_t>(blocks - 1));
    std::iota(ids.begin(), ids.end(), 1);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
    size_t next = 0;
    for (auto n : lengths) {
      BlockTable t;
      for (int64_t b = 0; b < KvBlockAllocator::blocks_for(n, bs); ++b) t.blocks.push_back(ids[next++]);
      t.length = n;
      tables.push_back(t);
    }
    torch::manual_seed(seed);
    auto kv = pool.layer(0);
    if (stale) {
      kv.k.fill_(std::numeric_limits<double>::quiet_NaN());
      kv.v.fill_(std::numeric_limits<double>::quiet_NaN());
    }
    // histories: every position of every table (the step's own positions are rewritten by it)
    std::vector<int64_t> slots;
    for (const auto& t : tables)
      for (int64_t p = 0; p < t.length; ++p) slots.push_back(int64_t(t.blocks[size_t(p / bs)]) * bs + p % bs);
    auto idx = torch::tensor(slots, torch::kLong).to(torch::kCUDA);
    auto opts = torch::TensorOptions().dtype(dt).device(torch::kCUDA);
    kv.k.index_copy_(0, idx, torch::randn({idx.size(0), h.kv, h.d}, opts));
    kv.v.index_copy_(0, idx, torch::randn({idx.size(0), h.kv, h.d}, opts));
  }

  // The same pool with every NaN made 0: what the LibTorch path (which multiplies masked keys
  // by 0) needs to give finite outputs.
  KvPool clean_copy() const {
    KvPool c({{heads.kv, heads.d}}, pool.block_size(), pool.blocks(), dtype, pool.device());
    c.layer(0).k.copy_(torch::nan_to_num(pool.layer(0).k, 0.0, 0.0, 0.0));
    c.layer(0).v.copy_(torch::nan_to_num(pool.layer(0).v, 0.0, 0.0, 0.0));
    return c;
  }

  // Rows: sequence i adds n[i] tokens at its end (n = 1: a decode row).
  StepBatch batch(const std::vector<int64_t>& n) const {
    StepBatch b;
    for (size_t i = 0; i < tables.size(); ++i) b.rows.push_back({&tables[i], tables[i].length - n[i], n[i]});
    return b;
  }

  Heads heads;
  c10::ScalarType dtype;
  KvPool pool;
  std::vector<BlockTable> tables;
};

// q, k, v of T tokens; q is a view into a wider [T, q + 2 kv heads, d] tensor, as a model's
// fused projection gives it (a row stride wider than its heads).
struct Qkv {
  Qkv(int64_t T, Heads h, c10::ScalarType dt) {
    auto all = torch::randn({T, h.q + 2 * h.kv, h.d}, torch::TensorOptions().dtype(dt).device(torch::kCUDA));
    q = all.narrow(1, 0, h.q);
    k = all.narrow(1, h.q, h.kv);
    v = all.narrow(1, h.q + h.kv, h.kv);
  }
  torch::Tensor q, k, v;
};

inline torch::Tensor attend_with(bool kernels, const AttentionInput& in, const KvPool& pool, const Qkv& x,
                                 const LayerAttention& layer) {
  cuda::set_kernels_enabled(kernels);
  in.reset_memo();
  auto out = attend(in, pool.layer(0), x.q, x.k, x.v, layer);
  cuda::set_kernels_enabled(true);
  return out;
}

// max |a - b| / max |b| in fp32
inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  auto af = a.to(torch::kFloat), bf = b.to(torch::kFloat);
  const double scale = std::max(bf.abs().max().item<double>(), 1e-30);
  return (af - bf).abs().max().item<double>() / scale;
}

inline double tolerance(c10::ScalarType dt) {
  return dt == torch::kFloat ? 2e-4 : dt == torch::kHalf ? 8e-3 : 4e-2;
}

inline const char* name(c10::ScalarType dt) {
  return dt == torch::kFloat ? "fp32" : dt == torch::kHalf ? "fp16" : "bf16";
}

}  // namespace duet::gpu_test
