// duet-kernel-bench: each CUDA kernel of common/cuda/ against the LibTorch path it replaces, on
// the Llama-3.2-1B shape (32 query heads, 8 KV heads, head_dim 64, hidden 2048, MLP 8192):
// max relative error and time per call (wall clock over many calls after a warm-up, launches
// included: eager, not a graph replay), with the bytes each must move and the rate that gives.
//   duet-kernel-bench [--iters N]   (markdown on stdout)
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "common/ops.hpp"
#include "common/rope.hpp"
#include "tests/gpu/paged_world.hpp"

using namespace duet;
using namespace duet::gpu_test;

namespace {

int iters = 200;

double time_us(const std::function<void()>& f) {
  for (int i = 0; i < 10; ++i) f();
  torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) f();
  torch::cuda::synchronize();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
}

void row(const char* kernel, const std::string& shape, c10::ScalarType dt, double err, double us_k, double us_t,
         double bytes) {
  std::printf("| %s | %s | %s | %.2e | %.1f | %.1f | %.2fx | %.0f |\n", kernel, shape.c_str(), name(dt), err, us_k,
              us_t, us_t / us_k, bytes / us_k / 1e3);
}

void bench_attention(c10::ScalarType dt, int64_t B, int64_t ctx, int64_t window) {
  const Heads h{32, 8, 64};
  PagedWorld w(std::vector<int64_t>(size_t(B), ctx), h, dt, false);
  auto in = build_attention_input(w.batch(std::vector<int64_t>(size_t(B), 1)), kKvBlockSize, 0,
                                  c10::Device(c10::kCUDA));
  Qkv x(B, h, dt);
  const LayerAttention layer{0.125, 0.0, window};
  const double err = rel_err(attend_with(true, in, w.pool, x, layer), attend_with(false, in, w.pool, x, layer));
  const double us_k = time_us([&] { attend_with(true, in, w.pool, x, layer); });
  const double us_t = time_us([&] { attend_with(false, in, w.pool, x, layer); });
  const int64_t keys = window > 0 ? std::min(ctx, window) : ctx;
  const double bytes = double(B) * (keys * 2 * h.kv * h.d + 2 * h.q * h.d + 2 * h.kv * h.d) * c10::elementSize(dt);
  row("decode attention + KV write", std::to_string(B) + " rows x " + std::to_string(ctx) + " keys" +
                                         (window > 0 ? ", window " + std::to_string(window) : ""),
      dt, err, us_k, us_t, bytes);
}

void bench_prefill(c10::ScalarType dt, int64_t n) {
  const Heads h{32, 8, 64};
  PagedWorld w({n, n, 1, 1}, h, dt, false);
  auto in = build_attention_input(w.batch({n, n, 1, 1}), kKvBlockSize, 0, c10::Device(c10::kCUDA));
  Qkv x(2 * n + 2, h, dt);
  const LayerAttention layer{0.125, 0.0, 0};
  const double err = rel_err(attend_with(true, in, w.pool, x, layer), attend_with(false, in, w.pool, x, layer));
  const double us_k = time_us([&] { attend_with(true, in, w.pool, x, layer); });
  const double us_t = time_us([&] { attend_with(false, in, w.pool, x, layer); });
  const double bytes = double(2 * n * 2 * h.kv * h.d + (2 * n + 2) * 2 * h.q * h.d) * c10::elementSize(dt);
  row("mixed attention", "2 prompts x " + std::to_string(n) + " + 2 decode", dt, err, us_k, us_t, bytes);
}

void bench_pointwise(c10::ScalarType dt) {
  const int64_t T = 64, H = 2048, I = 8192;
  auto opts = torch::TensorOptions().dtype(dt).device(torch::kCUDA);
  auto x = torch::randn({T, H}, opts), a = torch::randn({T, H}, opts), w = torch::rand({H}, opts) + 0.5;
  auto gu = torch::randn({T, 2 * I}, opts);
  const double e = c10::elementSize(dt);
  auto both = [&](bool k) {
    cuda::set_kernels_enabled(k);
    auto r = ops::add_rms_norm(x, a, w, 1e-5);
    cuda::set_kernels_enabled(true);
    return r;
  };
  row("residual + RMSNorm", "64 x 2048", dt, rel_err(both(true).second, both(false).second),
      time_us([&] { both(true); }), time_us([&] { both(false); }), 4.0 * T * H * e);
  auto gated = [&](bool k) {
    cuda::set_kernels_enabled(k);
    auto r = ops::gated_activation(gu, Activation::silu);
    cuda::set_kernels_enabled(true);
    return r;
  };
  row("SiLU(gate) * up", "64 x 8192", dt, rel_err(gated(true), gated(false)), time_us([&] { gated(true); }),
      time_us([&] { gated(false); }), 3.0 * T * I * e);

  RopeTable table(RopeSpec{}, 64, 4096, dt, c10::Device(c10::kCUDA));
  PagedWorld pw(std::vector<int64_t>(64, 300), {32, 8, 64}, dt, false);
  auto in = build_attention_input(pw.batch(std::vector<int64_t>(64, 1)), kKvBlockSize, 0, c10::Device(c10::kCUDA));
  auto qk = torch::randn({64, 48, 64}, opts).narrow(1, 0, 40);
  auto rope = [&](bool k) {
    cuda::set_kernels_enabled(k);
    in.reset_memo();
    auto r = apply_rope(in, table, qk);
    cuda::set_kernels_enabled(true);
    return r;
  };
  row("rotary (q and k heads)", "64 x 40 heads x 64", dt, rel_err(rope(true), rope(false)),
      time_us([&] { rope(true); }), time_us([&] { rope(false); }), 2.0 * 64 * 40 * 64 * e);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--iters")) iters = std::atoi(argv[i + 1]);
  if (!torch::cuda::is_available()) {
    std::puts("no CUDA device");
    return 77;
  }
  std::puts("| kernel | shape | dtype | max rel err vs LibTorch | kernel us | LibTorch us | speed-up | kernel GB/s |");
  std::puts("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
  for (auto dt : {torch::kBFloat16, torch::kHalf, torch::kFloat}) {
    for (int64_t B : {1, 8, 64})
      for (int64_t ctx : {384, 4096}) bench_attention(dt, B, ctx, 0);
    bench_attention(dt, 64, 4096, 512);
    bench_prefill(dt, 128);
    bench_prefill(dt, 256);  // the longest span the kernel takes (attend()'s kMaxKernelSpan)
    bench_pointwise(dt);
  }
  return 0;
}
