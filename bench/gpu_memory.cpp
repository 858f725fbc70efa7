#include "bench/gpu_memory.hpp"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <sstream>

#if defined(DUET_WITH_CUDA) && __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define DUET_BENCH_CUDA 1
#else
#define DUET_BENCH_CUDA 0
#endif

namespace duet::bench {

namespace {
std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char b[4096];
  size_t n;
  while ((n = std::fread(b, 1, sizeof b, p)) > 0) out.append(b, n);
  ::pclose(p);
  return out;
}
}  // namespace

std::string gpu_name() {
  auto s = run("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1");
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s.empty() ? "cpu" : s;
}

double process_gpu_mib(pid_t pid) {
  std::istringstream in(run("nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null"));
  std::string line;
  while (std::getline(in, line)) {
    long p = 0;
    double mib = 0;
    if (std::sscanf(line.c_str(), "%ld, %lf", &p, &mib) == 2 && p == pid) return mib;
  }
  return -1;
}

void reset_peak(const c10::Device& dev) {
#if DUET_BENCH_CUDA
  if (!dev.is_cuda()) return;
  try {  // the allocator is set up lazily: before the first CUDA allocation it knows no device
    torch::empty({1}, torch::TensorOptions().device(dev));
    c10::cuda::CUDACachingAllocator::resetPeakStats(dev.has_index() ? dev.index() : 0);
  } catch (const std::exception&) {
  }
#else
  (void)dev;
#endif
}

double peak_allocated_mib(const c10::Device& dev) {
#if DUET_BENCH_CUDA
  if (dev.is_cuda()) {
    try {
      auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(dev.has_index() ? dev.index() : 0);
      return double(st.allocated_bytes[0].peak) / 1048576.0;
    } catch (const std::exception&) {
    }
  }
#else
  (void)dev;
#endif
  return -1;
}

void synchronize(const c10::Device& dev) {
  if (dev.is_cuda()) torch::cuda::synchronize(dev.has_index() ? dev.index() : 0);
}

double copy_bandwidth_gbs(const c10::Device& dev) {
  if (!dev.is_cuda()) return -1;
  const int64_t bytes = int64_t(1) << 30;
  auto opts = torch::TensorOptions().dtype(torch::kUInt8).device(dev);
  auto a = torch::randint(0, 255, {bytes}, opts), b = torch::empty({bytes}, opts);
  for (int i = 0; i < 3; ++i) b.copy_(a);
  synchronize(dev);
  const int reps = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) (i % 2 ? a : b).copy_(i % 2 ? b : a);
  synchronize(dev);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * double(bytes) * reps / s / 1e9;
}

}  // namespace duet::bench
