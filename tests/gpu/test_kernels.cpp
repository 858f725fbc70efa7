// Each CUDA kernel of common/cuda/ against the LibTorch path on random inputs, over dtypes, head
// dims, group sizes and block layouts (label gpu; the binary exits 77 without a CUDA device).
#include "tests/common/torch_doctest.hpp"

#include "common/ops.hpp"
#include "common/rope.hpp"
#include "tests/gpu/paged_world.hpp"

using namespace duet;
using namespace duet::gpu_test;

namespace {

const c10::ScalarType kDtypes[] = {torch::kFloat, torch::kBFloat16, torch::kHalf};
const Heads kHeads[] = {{8, 2, 64}, {32, 8, 64}, {4, 4, 128}, {16, 2, 128}, {6, 2, 64}, {8, 4, 256}, {4, 2, 8}, {2, 1, 16}, {8, 4, 32}};

// The layer forms a step built with `step_window` can run: without a step window, every key or a
// layer window of its own (masked, as Gemma's local layers), with and without a soft-cap.
std::vector<LayerAttention> layers(int64_t d, int64_t step_window = 0) {
  const double s = 1.0 / std::sqrt(double(d));
  if (step_window > 0) return {{s, 0.0, step_window}, {s, 20.0, step_window}};
  return {{s, 0.0, 0}, {s, 30.0, 0}, {s, 0.0, 40}, {s, 20.0, 40}};
}

// Every layer form on one step: kernels against LibTorch, and the pool the same after both.
void compare_step(PagedWorld& w, const AttentionInput& in, int64_t tokens, int64_t compare_rows, const KvPool* ref_pool,
                  const std::string& what) {
  for (const auto& layer : layers(w.heads.d, in.window)) {
    Qkv x(tokens, w.heads, w.dtype);
    auto ref = attend_with(false, in, ref_pool ? *ref_pool : w.pool, x, layer).narrow(0, 0, compare_rows);
    auto out = attend_with(true, in, w.pool, x, layer).narrow(0, 0, compare_rows);
    const double err = rel_err(out, ref);
    INFO(what, " ", name(w.dtype), " heads ", w.heads.q, "/", w.heads.kv, " d ", w.heads.d, " softcap ", layer.softcap,
         " window ", layer.window, ": rel err ", err);
    REQUIRE(out.isfinite().all().item<bool>());
    CHECK(err <= tolerance(w.dtype));
  }
}

}  // namespace

TEST_CASE("paged decode attention == the LibTorch path (dtypes, heads, contexts, windows, soft-caps)") {
  for (auto dt : kDtypes)
    for (const auto& h : kHeads) {
      // contexts inside one block, across blocks, and long enough for several splits
      PagedWorld w({1, 16, 17, 300, 1100}, h, dt, false);
      auto in = build_attention_input(w.batch({1, 1, 1, 1, 1}), kKvBlockSize, 0, c10::Device(c10::kCUDA));
      compare_step(w, in, 5, 5, nullptr, "decode");
      auto inw = build_attention_input(w.batch({1, 1, 1, 1, 1}), kKvBlockSize, 40, c10::Device(c10::kCUDA));
      compare_step(w, inw, 5, 5, nullptr, "decode, step window 40");
    }
}

TEST_CASE("paged attention over mixed steps (prefill spans beside decode rows) == the LibTorch path") {
  for (auto dt : kDtypes)
    for (const auto& h : {Heads{8, 2, 64}, Heads{16, 2, 128}}) {
      PagedWorld w({7, 300, 53, 130}, h, dt, false);
      const std::vector<int64_t> n = {7, 1, 20, 1};  // a fresh prompt, a decode row, a chunk, a decode row
      auto in = build_attention_input(w.batch(n), kKvBlockSize, 0, c10::Device(c10::kCUDA));
      compare_step(w, in, 29, 29, nullptr, "mixed");
      auto inw = build_attention_input(w.batch(n), kKvBlockSize, 16, c10::Device(c10::kCUDA));
      compare_step(w, inw, 29, 29, nullptr, "mixed, step window 16");
    }
}

TEST_CASE("stale NaN in the pool (reused blocks, the scratch block) never reaches an output") {
  for (auto dt : kDtypes) {
    PagedWorld w({5, 33, 200}, {8, 2, 64}, dt, /*stale=*/true);
    auto clean = w.clean_copy();
    auto dec = build_attention_input(w.batch({1, 1, 1}), kKvBlockSize, 0, c10::Device(c10::kCUDA));
    compare_step(w, dec, 3, 3, &clean, "stale decode");
    // a graph bucket: padded rows write and read the scratch block
    auto pad = build_attention_input(w.batch({1, 1, 1}), kKvBlockSize, 0, c10::Device(c10::kCUDA), {8, 256});
    compare_step(w, pad, 8, 3, &clean, "stale padded decode");
    auto mixed = build_attention_input(w.batch({5, 1, 9}), kKvBlockSize, 0, c10::Device(c10::kCUDA));
    compare_step(w, mixed, 15, 15, &clean, "stale mixed");
  }
}

TEST_CASE("the KV write puts k and v at the step's slots, as index_copy_ does") {
  for (auto dt : kDtypes) {
    PagedWorld w({40, 3}, {8, 2, 64}, dt, false);
    auto in = build_attention_input(w.batch({1, 3}), kKvBlockSize, 0, c10::Device(c10::kCUDA));
    Qkv x(4, w.heads, dt);
    auto clean = w.clean_copy();
    attend_with(true, in, w.pool, x, layers(64)[0]);
    attend_with(false, in, clean, x, layers(64)[0]);
    CHECK(torch::equal(w.pool.layer(0).k, clean.layer(0).k));
    CHECK(torch::equal(w.pool.layer(0).v, clean.layer(0).v));
  }
}

TEST_CASE("a batch of decode rows gives each row what it gets alone") {
  for (auto dt : kDtypes) {
    PagedWorld w({9, 70, 700, 1}, {32, 8, 64}, dt, false);
    auto in = build_attention_input(w.batch({1, 1, 1, 1}), kKvBlockSize, 0, c10::Device(c10::kCUDA));
    Qkv x(4, w.heads, dt);
    auto all = attend_with(true, in, w.pool, x, layers(64)[0]);
    for (size_t i = 0; i < 4; ++i) {
      StepBatch one;
      one.rows.push_back({&w.tables[i], w.tables[i].length - 1, 1});
      auto in1 = build_attention_input(one, kKvBlockSize, 0, c10::Device(c10::kCUDA));
      Qkv x1 = x;
      x1.q = x.q.narrow(0, int64_t(i), 1);
      x1.k = x.k.narrow(0, int64_t(i), 1);
      x1.v = x.v.narrow(0, int64_t(i), 1);
      auto alone = attend_with(true, in1, w.pool, x1, layers(64)[0]);
      INFO(name(dt), " row ", i);
      CHECK(rel_err(alone, all.narrow(0, int64_t(i), 1)) <= (dt == torch::kFloat ? 1e-5 : tolerance(dt) / 4));
    }
  }
}

TEST_CASE("rotary kernel == RopeTable::apply_rows (full and partial rotary)") {
  for (auto dt : kDtypes)
    for (double partial : {1.0, 0.5}) {
      RopeSpec spec;
      spec.partial_rotary_factor = partial;
      RopeTable table(spec, 64, 512, dt, c10::Device(c10::kCUDA));
      PagedWorld w({300, 12}, {8, 2, 64}, dt, false);
      auto in = build_attention_input(w.batch({1, 12}), kKvBlockSize, 0, c10::Device(c10::kCUDA));
      auto all = torch::randn({13, 14, 64}, torch::TensorOptions().dtype(dt).device(torch::kCUDA));
      auto x = all.narrow(1, 0, 10);  // rows wider than the heads, as q and k of a fused projection
      auto ref = RopeTable::apply_rows(x, table.cos.index_select(0, in.positions).unsqueeze(1),
                                       table.sin.index_select(0, in.positions).unsqueeze(1));
      in.reset_memo();
      auto out = apply_rope(in, table, x);
      const double err = rel_err(out, ref);
      const int64_t differ = out.ne(ref).sum().item<int64_t>();
      INFO(name(dt), " partial ", partial, ": rel err ", err, ", ", differ, " elements not bit-equal");
      CHECK(err <= (dt == torch::kFloat ? 1e-6 : tolerance(dt) / 4));
      CHECK(out.is_contiguous());
    }
}

TEST_CASE("fused residual + RMSNorm, Gemma's (1 + w) RMSNorm and the gated activations == LibTorch") {
  for (auto dt : kDtypes) {
    auto opts = torch::TensorOptions().dtype(dt).device(torch::kCUDA);
    auto x = torch::randn({37, 2048}, opts), a = torch::randn({37, 2048}, opts);
    auto w = torch::rand({2048}, opts) + 0.5;
    auto w1 = (torch::rand({2048}, opts.dtype(torch::kFloat)) + 0.5);
    cuda::set_kernels_enabled(false);
    auto [rs, rn] = ops::add_rms_norm(x, a, w, 1e-6);
    auto r1 = ops::rms_norm_one_plus(x, w1, 1e-6);
    auto gu = torch::randn({37, 2 * 1536}, opts) * 3;
    std::vector<torch::Tensor> rg;
    for (auto act : {Activation::silu, Activation::gelu_tanh, Activation::gelu_exact})
      rg.push_back(ops::gated_activation(gu, act));
    cuda::set_kernels_enabled(true);
    auto [ks, kn] = ops::add_rms_norm(x, a, w, 1e-6);
    INFO(name(dt));
    CHECK(torch::equal(ks, rs));  // the sum is one rounding in both
    CHECK(rel_err(kn, rn) <= tolerance(dt) / 4);
    CHECK(rel_err(ops::rms_norm_one_plus(x, w1, 1e-6), r1) <= tolerance(dt) / 4);
    int i = 0;
    for (auto act : {Activation::silu, Activation::gelu_tanh, Activation::gelu_exact}) {
      INFO("activation ", i);
      CHECK(rel_err(ops::gated_activation(gu, act), rg[size_t(i++)]) <= tolerance(dt) / 4);
    }
  }
}
