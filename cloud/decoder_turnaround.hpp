#pragma once
// When each decoding session's next forward is due back. An edge answers a reply with its next
// position one turnaround later (the reply's trip, its LM head and sampler, the forward's trip);
// the engine uses these predictions to decide whether a step should wait a little for sessions
// about to arrive (a full batch costs about what half a batch does) or start now (nobody is due
// before the window closes). No LibTorch here.
#include <chrono>
#include <cstdint>
#include <map>
#include <vector>


namespace duet::cloud {

using Clock = std::chrono::steady_clock;

class DecoderTurnaround {
 public:
  // Sessions not heard of for this long are forgotten (they finished or paused).
  static constexpr std::chrono::milliseconds kMemory{2000};
  // Turnaround buckets for the histogram (upper bounds, ms); the last bucket is everything above.
  static constexpr double kBucketsMs[] = {0.25, 0.5, 1, 2, 4, 8, 16, 32, 64};
  static constexpr size_t kBuckets = sizeof(kBucketsMs) / sizeof(kBucketsMs[0]) + 1;

  // The session's reply left at `at`: its next forward is due one turnaround later.
  void replied(uint64_t session, Clock::time_point at);
  // A single-position forward of the session arrived at `at` (as the socket thread received it).
  void arrived(uint64_t session, Clock::time_point at);
  void forget(uint64_t session);

  // Sessions that replied at most `window` ago, and those heard of within kMemory (any > 0:
  // someone is mid-generation). Drops the ones older than kMemory.
  size_t recent(Clock::time_point now, std::chrono::milliseconds window);
  // Sessions replied to and not back yet whose next forward is predicted by `deadline` (their own
  // smoothed turnaround; a session seen once is predicted by its one sample).
  size_t due_by(Clock::time_point deadline) const;

  const std::vector<uint64_t>& histogram() const { return hist_; }  // turnarounds by kBucketsMs
  // The q-quantile of the turnarounds seen, as the upper bound of its bucket (ms; 0 with none).
  double quantile_ms(double q) const;

 private:
  struct Decoder {
    Clock::time_point last_reply{};
    bool awaiting = false;       // replied to, its next forward not yet here
    double turnaround_s = -1;    // smoothed; < 0 until one is seen
  };
  std::map<uint64_t, Decoder> decoders_;
  std::vector<uint64_t> hist_ = std::vector<uint64_t>(kBuckets, 0);
};

// The batching window's choice, asked again as sessions arrive: waiting on holds each decode that
// waits now for up to `remaining_s` more; starting now makes each of the `due` sessions (predicted
// back inside the window) miss this step and wait about a whole `step_s` for the next. Wait while
// the first costs less. It is what merges two cohorts of sessions that alternate steps (each
// arriving while the other's step runs, each step half full) into one full step, and what keeps a
// step from waiting for one late session while many are held.
bool worth_waiting(size_t decodes_waiting, size_t due, double remaining_s, double step_s);

}  // namespace duet::cloud
