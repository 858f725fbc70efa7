#include "bench/load_run.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "bench/load_edge.hpp"

namespace duet::bench {

namespace {

// C++17 has no std::barrier. Threads whose session failed still arrive, so nobody waits forever.
class Barrier {
 public:
  explicit Barrier(size_t n) : n_(n) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lk(m_);
    const size_t gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lk, [&] { return gen_ != gen; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  size_t n_, count_ = 0, gen_ = 0;
};

}  // namespace

RunResult run_sessions(const std::vector<SessionScript>& scripts, const RunOptions& opts) {
  const size_t n = scripts.size();
  RunResult res;
  res.sessions.resize(n);
  Barrier barrier(n + 1);  // the sessions and this thread
  const bool together = opts.stagger_ms <= 0;
  Clock::time_point start;  // set by this thread before the "go" barrier releases anyone

  auto body = [&](size_t i) {
    auto& tr = res.sessions[i];
    const auto& sc = scripts[i];
    auto attempt = [&](auto&& fn) {
      if (!tr.error.empty()) return;
      try {
        fn();
      } catch (const std::exception& e) {
        tr.error = e.what();
      }
    };
    std::unique_ptr<LoadEdge> edge;
    attempt([&] {
      edge = std::make_unique<LoadEdge>(opts.conn, opts.fingerprint);
      edge->open(opts.max_positions);
      tr.hidden.reserve(edge->row_bytes() * (sc.steps + 1));
      tr.step_ms.reserve(sc.steps);
      tr.step_cloud_ms.reserve(sc.steps);
    });
    barrier.arrive_and_wait();  // 1: all connected
    barrier.arrive_and_wait();  // 2: go
    if (!together) std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                               std::chrono::duration<double, std::milli>(opts.stagger_ms * double(i))));
    attempt([&] {
      const auto t = edge->forward(0, sc.prompt_len, sc.prefill, tr.hidden);
      tr.prefill_ms = t.round_trip_ms;
      tr.prefill_cloud_ms = t.cloud_ms;
    });
    if (together) barrier.arrive_and_wait();  // 3: every prefill done, decodes start together
    attempt([&] {
      const size_t row = edge->row_bytes();
      tr.decode_start = Clock::now();
      for (uint32_t j = 0; j < sc.steps; ++j) {
        const auto t = edge->forward(sc.prompt_len + j, 1, sc.decode + row * j, tr.hidden);
        tr.step_ms.push_back(t.round_trip_ms);
        tr.step_cloud_ms.push_back(t.cloud_ms);
      }
      tr.decode_end = Clock::now();
    });
    barrier.arrive_and_wait();  // 4: all decoded; sessions still open
    barrier.arrive_and_wait();  // 5: memory read, close
    attempt([&] { edge->close(); });
    edge.reset();
  };

  std::vector<std::thread> threads;
  threads.reserve(n);
  const auto c0 = Clock::now();
  for (size_t i = 0; i < n; ++i) threads.emplace_back(body, i);
  barrier.arrive_and_wait();
  res.connect_s = std::chrono::duration<double>(Clock::now() - c0).count();
  start = Clock::now();
  barrier.arrive_and_wait();
  if (together) barrier.arrive_and_wait();
  barrier.arrive_and_wait();
  if (opts.while_open) opts.while_open();
  barrier.arrive_and_wait();
  for (auto& t : threads) t.join();

  Clock::time_point first = Clock::time_point::max(), last = Clock::time_point::min();
  for (const auto& s : res.sessions) {
    if (!s.error.empty()) continue;
    first = std::min(first, s.decode_start);
    last = std::max(last, s.decode_end);
  }
  if (last > first) res.decode_wall_s = std::chrono::duration<double>(last - first).count();
  return res;
}

}  // namespace duet::bench
