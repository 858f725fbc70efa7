// duet-bench-stages: aggregate decode tok/s of the front door's Pipeline over 1, 2, 3 stage
// workers (duet-stage processes on loopback, Gloo), one step at a time and with two micro-batches
// in flight (Pipeline::submit/collect), against the same layers in one process. Random hidden
// states: the blocks' cost does not depend on them. Prints a table (docs/STAGES.md has figures).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cloud/pipeline.hpp"
#include "common/checkpoint.hpp"

extern char** environ;
using namespace duet;
using namespace duet::cloud;
using Clock = std::chrono::steady_clock;

namespace {

std::string plan_for(int64_t layers, int stages, bool workers) {
  std::string plan;
  for (int64_t s = 0, first = 0; s < stages; ++s) {
    const int64_t last = first + layers / stages + (s < layers % stages ? 1 : 0) - 1;
    plan += (s ? "," : "") + std::string("cpu") + (workers ? "@b" + std::to_string(s + 1) : "") + "=" +
            std::to_string(first) + "-" + std::to_string(last);
    first = last + 1;
  }
  return plan;
}

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0)
    throw std::runtime_error("cannot start " + args[0]);
  return pid;
}

struct Run {
  double sequential = 0, pipelined = 0;  // tok/s
};

// n sessions: prefill `prefill` positions, then `steps` decode steps of every session.
Run measure(Pipeline& pl, int64_t n, int64_t prefill, int64_t steps, int64_t hidden) {
  Run r;
  for (int mode = 0; mode < 2; ++mode) {
    std::vector<BlockTable> tables(static_cast<size_t>(n));
    StepBatch pre;
    for (auto& t : tables) {
      if (!pl.allocator().ensure(t, prefill + steps + 1)) throw std::runtime_error("KV pool too small");
      pre.rows.push_back({&t, 0, prefill});
    }
    pl.forward(pre, torch::randn({n * prefill, hidden}));
    for (auto& t : tables) t.length = prefill;
    // two micro-batches: sessions [0, h) and [h, n) (one when n == 1)
    const int64_t h = mode == 0 || n == 1 ? n : n / 2;
    auto batch_of = [&](int64_t lo, int64_t hi, int64_t pos) {
      StepBatch b;
      for (int64_t i = lo; i < hi; ++i) b.rows.push_back({&tables[size_t(i)], pos, 1});
      return b;
    };
    const auto t0 = Clock::now();
    if (mode == 0) {
      for (int64_t s = 0; s < steps; ++s) {
        pl.forward(batch_of(0, n, prefill + s), torch::randn({n, hidden}));
        for (auto& t : tables) t.length = prefill + s + 1;
      }
    } else {
      // A_s and B_s in flight together; A_{s+1} goes in as soon as A_s is back
      std::vector<StepBatch> a(static_cast<size_t>(steps)), b(static_cast<size_t>(steps));
      for (int64_t s = 0; s < steps; ++s) a[size_t(s)] = batch_of(0, h, prefill + s), b[size_t(s)] = batch_of(h, n, prefill + s);
      int64_t ta = pl.submit(a[0], torch::randn({h, hidden})), tb = -1;
      if (h < n) tb = pl.submit(b[0], torch::randn({n - h, hidden}));
      for (int64_t s = 0; s < steps; ++s) {
        pl.collect(ta);
        for (int64_t i = 0; i < h; ++i) tables[size_t(i)].length = prefill + s + 1;
        if (s + 1 < steps) ta = pl.submit(a[size_t(s + 1)], torch::randn({h, hidden}));
        if (tb >= 0) {
          pl.collect(tb);
          for (int64_t i = h; i < n; ++i) tables[size_t(i)].length = prefill + s + 1;
          if (s + 1 < steps) tb = pl.submit(b[size_t(s + 1)], torch::randn({n - h, hidden}));
        }
      }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    (mode == 0 ? r.sequential : r.pipelined) = double(n * steps) / secs;
    for (auto& t : tables) pl.allocator().release(t);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-bench-stages: decode tok/s over stage workers on loopback (CPU, Gloo)"};
  std::string model = "models/abc-folk", stage_bin;
  std::vector<int> stage_counts = {1, 2, 3};
  std::vector<int64_t> sessions = {1, 8, 64};
  int64_t steps = 32, prefill = 16;
  app.add_option("--model", model, "model folder");
  app.add_option("--stage-binary", stage_bin, "duet-stage (default: next to this binary, ../cloud/duet-stage)");
  app.add_option("--stages", stage_counts, "stage counts")->delimiter(',');
  app.add_option("--sessions", sessions, "concurrent sessions")->delimiter(',');
  app.add_option("--steps", steps, "decode steps per measurement");
  app.add_option("--prefill", prefill, "positions per session before decoding");
  CLI11_PARSE(app, argc, argv);
  if (stage_bin.empty()) {
    std::string self = argv[0];
    stage_bin = self.substr(0, self.rfind('/') + 1) + "../cloud/duet-stage";
  }
  spdlog::set_level(spdlog::level::warn);
  torch::manual_seed(0);
  Checkpoint ckpt(model);
  const auto& mc = ckpt.config();
  KvSizing kv;
  kv.max_blocks = 64 * KvBlockAllocator::blocks_for(prefill + steps + 1) + 1 + 64;
  std::printf("%-7s %-9s %10s %14s %14s\n", "stages", "sessions", "local", "workers seq", "workers pipe");
  for (int s : stage_counts) {
    Pipeline local(ckpt, make_stage_plan(plan_for(mc.num_layers, s, false), {}, mc.num_layers), torch::kFloat, kv);
    ClusterOptions co;
    co.address = "127.0.0.1";
    co.store_port = 0;
    co.allow_wildcard_store = true;
    co.step_timeout = std::chrono::seconds(30);
    Pipeline remote(ckpt, make_stage_plan(plan_for(mc.num_layers, s, true), {}, mc.num_layers), torch::kFloat, kv, co);
    std::vector<pid_t> pids;
    for (int w = 1; w <= s; ++w)
      pids.push_back(spawn({stage_bin, "--model", model, "--name", "b" + std::to_string(w), "--front",
                            "127.0.0.1:" + std::to_string(remote.remote()->store_port()), "--address", "127.0.0.1",
                            "--log-level", "warn", "--idle-timeout-ms", "60000"}));
    if (!remote.remote()->wait_ready(std::chrono::seconds(60))) {
      std::fprintf(stderr, "workers did not join: %s\n", remote.unavailable_reason().c_str());
      return 1;
    }
    for (int64_t n : sessions) {
      const auto l = measure(local, n, prefill, steps, mc.hidden_size);
      const auto r = measure(remote, n, prefill, steps, mc.hidden_size);
      std::printf("%-7d %-9lld %10.1f %14.1f %14.1f\n", s, static_cast<long long>(n), l.sequential, r.sequential,
                  r.pipelined);
      std::fflush(stdout);
    }
    for (pid_t p : pids) kill(p, SIGTERM);
    for (pid_t p : pids) waitpid(p, nullptr, 0);
  }
  return 0;
}
