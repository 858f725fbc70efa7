#pragma once
// Which positions run in the next step. Policy only (no LibTorch, no sockets): the engine admits
// forwards (cloud/admission.hpp), hands them here, runs the rows this returns as one StepBatch,
// and reports back. Each step takes every waiting decode position (a forward of one position)
// and fills the rest of the token budget with prefill chunks, oldest forward first: a long prompt
// never holds other sessions' decodes back by more than one chunk, and no forward waits behind
// younger ones of the same kind.
#include <chrono>
#include <cstdint>
#include <deque>
#include <vector>

namespace duet::cloud {

struct SchedulerLimits {
  int64_t max_batch_tokens = 2048;  // positions in one step, decode and prefill together
  int64_t max_batch_rows = 256;     // sessions in one step
  int64_t prefill_chunk = 512;      // positions of one forward in one step, at most
};

// An admitted forward: positions [start, start + n) of one session, `done` of them already run.
struct ScheduledForward {
  uint64_t job = 0;      // the engine's handle
  uint64_t session = 0;  // at most one forward per session is given to the scheduler at a time
  int64_t start = 0, n = 0, done = 0;
  std::chrono::steady_clock::time_point arrived;
  int64_t remaining() const { return n - done; }
};

// One row of the next step: positions [start, start + n) of job.
struct PlannedRow {
  uint64_t job = 0;
  int64_t start = 0, n = 0;
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerLimits limits);

  void add(const ScheduledForward& f);  // arrival order is kept
  // The next step's rows: decode rows first (oldest first), then prefill chunks (oldest first)
  // up to the token budget. Empty when nothing waits. Rows are taken out of the queue until
  // complete() or fail() is called for them.
  std::vector<PlannedRow> next();
  // The rows of the last step ran: advances each forward; returns the jobs now complete.
  std::vector<uint64_t> complete(const std::vector<PlannedRow>& rows);
  // The rows of the last step failed: their forwards are dropped; returns their jobs.
  std::vector<uint64_t> fail(const std::vector<PlannedRow>& rows);
  // Drops a waiting forward (its session closed or expired); false when not waiting.
  bool cancel(uint64_t job);

  size_t waiting() const { return queue_.size(); }
  size_t decode_waiting() const;  // waiting forwards of one position left
  // Arrival of the oldest waiting forward (queue order is arrival order); the epoch when none.
  std::chrono::steady_clock::time_point oldest_arrival() const;
  const SchedulerLimits& limits() const { return limits_; }

 private:
  SchedulerLimits limits_;
  std::deque<ScheduledForward> queue_;     // waiting, arrival order
  std::vector<ScheduledForward> running_;  // handed out by next()
};

}  // namespace duet::cloud
