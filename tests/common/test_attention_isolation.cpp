// One sequence's attention never reads another's leftovers: keys past a row's length (stale slots
// of a reused block, the scratch block) contribute exactly nothing, whatever they hold — NaN and
// infinity included (issue 20, defect 1: a tenant's NaN reached another tenant's results).
#include "torch_doctest.hpp"

#include <limits>

#include "common/attention.hpp"
#include "common/kv_pool.hpp"

using namespace duet;

namespace {

constexpr int64_t kBs = 4, kKvHeads = 2, kHeads = 4, kDim = 8;

// Attention of one all-decode step over `pool` after `poison` filled every slot, then the rows'
// histories were written with the same values as in a clean pool.
torch::Tensor decode_step(float poison, const std::vector<BlockTable>& tables, const std::vector<int64_t>& starts,
                          const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const torch::Tensor& history_k, const torch::Tensor& history_v, DecodePadding pad = {}) {
  KvPool pool({{kKvHeads, kDim}}, kBs, 8, torch::kFloat, torch::kCPU);
  auto view = pool.layer(0);
  view.k.fill_(poison);
  view.v.fill_(poison);
  for (size_t r = 0; r < tables.size(); ++r)
    for (int64_t p = 0; p < starts[r]; ++p) {
      const int64_t slot = int64_t(tables[r].blocks[size_t(p / kBs)]) * kBs + p % kBs;
      view.k[slot].copy_(history_k[int64_t(r)][p]);
      view.v[slot].copy_(history_v[int64_t(r)][p]);
    }
  StepBatch batch;
  for (size_t r = 0; r < tables.size(); ++r) batch.rows.push_back({&tables[r], starts[r], 1});
  auto in = build_attention_input(batch, kBs, 0, torch::kCPU, pad);
  const int64_t T = in.tokens, B = static_cast<int64_t>(tables.size());
  auto qp = torch::zeros({T, kHeads, kDim}), kp = torch::zeros({T, kKvHeads, kDim}), vp = torch::zeros({T, kKvHeads, kDim});
  qp.narrow(0, 0, B).copy_(q);
  kp.narrow(0, 0, B).copy_(k);
  vp.narrow(0, 0, B).copy_(v);
  return attend(in, view, qp, kp, vp, LayerAttention{0.35, 0.0, 0}).narrow(0, 0, B);
}

}  // namespace

TEST_CASE("decode attention: NaN and infinity in stale pool slots change nothing") {
  torch::manual_seed(20);
  // row 0 is short (3 keys, its block partly stale), row 1 long (10 keys): row 0's keys are
  // padded to row 1's, so it reads past its length into stale slots and the scratch block
  const std::vector<int64_t> starts = {2, 9};
  std::vector<BlockTable> tables(2);
  tables[0].blocks = {5};
  tables[1].blocks = {1, 2, 3};
  auto hk = torch::randn({2, 9, kKvHeads, kDim}), hv = torch::randn({2, 9, kKvHeads, kDim});
  auto q = torch::randn({2, kHeads, kDim}), k = torch::randn({2, kKvHeads, kDim}), v = torch::randn({2, kKvHeads, kDim});
  const auto clean = decode_step(0.0f, tables, starts, q, k, v, hk, hv);
  REQUIRE(torch::isfinite(clean).all().item<bool>());
  for (float poison : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), 1e30f}) {
    CAPTURE(poison);
    const auto got = decode_step(poison, tables, starts, q, k, v, hk, hv);
    REQUIRE(torch::isfinite(got).all().item<bool>());
    REQUIRE(torch::equal(got, clean));  // exactly: masked keys contribute exactly zero
    // the same through a padded (CUDA-graph-shaped) step: extra rows and keys read the scratch block
    const auto padded = decode_step(poison, tables, starts, q, k, v, hk, hv, DecodePadding{4, 16});
    REQUIRE(torch::isfinite(padded).all().item<bool>());
    REQUIRE(torch::allclose(padded, clean, 1e-6, 1e-6));
  }
}
