#pragma once
// Which positions run in the next step. Policy only (no LibTorch, no sockets): the engine admits
// forwards (cloud/admission.hpp), hands them here, runs the rows this returns as one StepBatch,
// and reports back (complete/fail, and the step's time to observe()).
//
// Fair by client key first, then by age: each step takes the waiting decode positions (a forward
// of one position), round robin over keys when there are more than a step holds; then prefill
// chunks, the prefill budget shared equally by the keys that have prefill waiting (a key with
// less takes less and the rest goes to the others), oldest forward first within a key. While a
// step carries decode rows its prefill is capped by time: at most `step_latency_factor` times a
// decode-only step (measured, cloud/step_cost.hpp), so a decode never waits behind more than one
// bounded step, whatever one key floods the daemon with.
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "cloud/step_cost.hpp"

namespace duet::cloud {

struct SchedulerLimits {
  int64_t max_batch_tokens = 2048;  // positions in one step, decode and prefill together
  int64_t max_batch_rows = 256;     // sessions in one step
  int64_t prefill_chunk = 512;      // positions of one forward in one step, at most
  // A step with decode rows lasts at most this many decode-only steps (its prefill is cut to
  // fit); 0: no time cap (prefill fills max_batch_tokens).
  double step_latency_factor = 1.1;
  double max_step_seconds = 0.25;   // no step's prefill makes it longer than this (0: no cap)
  int64_t min_prefill_tokens = 1;   // a step with prefill waiting carries at least this many
  bool amortize_fixed_prefill = false;  // PrefillBudget::amortize_fixed: the stages run on CUDA
};

// An admitted forward: positions [start, start + n) of one session, `done` of them already run.
struct ScheduledForward {
  uint64_t job = 0;      // the engine's handle
  uint64_t session = 0;  // at most one forward per session is given to the scheduler at a time
  std::string owner;     // the client key (fair shares are per key)
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
  // The next step's rows: decode rows first, then prefill chunks (see above). Empty when nothing
  // waits. Rows are taken out of the queue until complete() or fail() is called for them; steps
  // may be in flight together (pipelined stages): a forward is in at most one of them, so two
  // steps in flight never carry the same session.
  // `decoders_active`: sessions are mid-generation (they decoded a moment ago), so a decode may
  // arrive while this step runs: its prefill is time-capped even if no decode row waits now.
  // `max_rows` (> 0): at most that many rows in this step (a micro-batch of pipelined stages).
  std::vector<PlannedRow> next(bool decoders_active = false, int64_t max_rows = 0);
  // The rows of a step ran: advances each forward; returns the jobs now complete.
  std::vector<uint64_t> complete(const std::vector<PlannedRow>& rows);
  // The rows of a step failed: their forwards are dropped; returns their jobs.
  std::vector<uint64_t> fail(const std::vector<PlannedRow>& rows);
  // Drops a waiting forward (its session closed or expired, its client gone); false when not waiting.
  bool cancel(uint64_t job);
  // A step of `decode_rows` single positions and `prefill_tokens` others took `seconds`.
  void observe(int64_t decode_rows, int64_t prefill_tokens, double seconds) {
    cost_.observe(decode_rows, prefill_tokens, seconds);
  }

  size_t waiting() const { return queue_.size(); }
  // Waiting forwards of one position left (decodes): the batching window weighs holding them.
  // Prompts do not count: a prompt is not held by a step's latency, a decode is.
  size_t decode_waiting() const;
  const SchedulerLimits& limits() const { return limits_; }
  const StepCost& cost() const { return cost_; }

 private:
  struct Pick;
  void take_decode_rows(Pick& pick);
  void take_prefill(Pick& pick, int64_t budget);
  SchedulerLimits limits_;
  StepCost cost_;
  uint64_t turn_ = 0;                      // rotates which key goes first
  std::deque<ScheduledForward> queue_;     // waiting, arrival order
  std::vector<ScheduledForward> running_;  // handed out by next()
};

}  // namespace duet::cloud
