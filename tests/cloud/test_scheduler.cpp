// The scheduler's policy: every waiting decode row in each step, prefill chunks oldest first in
// the budget left, a long prefill never holding decodes back, forwards keeping their age.
#include <doctest/doctest.h>

#include <stdexcept>

#include "cloud/scheduler.hpp"

using namespace duet::cloud;
using Clock = std::chrono::steady_clock;

namespace {
ScheduledForward fwd(uint64_t job, int64_t start, int64_t n, int age_ms, const std::string& owner = "key:a") {
  ScheduledForward f;
  f.owner = owner;
  f.job = job;
  f.session = job;
  f.start = start;
  f.n = n;
  f.arrived = Clock::time_point() + std::chrono::milliseconds(age_ms);
  return f;
}
int64_t tokens(const std::vector<PlannedRow>& rows) {
  int64_t t = 0;
  for (const auto& r : rows) t += r.n;
  return t;
}
}  // namespace

TEST_CASE("decode rows all go in one step; prefill fills the budget in chunks, oldest first") {
  Scheduler s({/*max_batch_tokens*/ 100, /*max_batch_rows*/ 64, /*prefill_chunk*/ 40, /*no time caps*/ 0, 0});
  s.add(fwd(1, 0, 300, 0));   // a long prompt, first in
  for (uint64_t j = 2; j <= 9; ++j) s.add(fwd(j, 50, 1, int(j)));  // 8 decodes
  s.add(fwd(10, 0, 30, 20));  // a short prompt, last in

  auto rows = s.next();
  REQUIRE(rows.size() == 10);
  for (int i = 0; i < 8; ++i) CHECK(rows[i].n == 1);  // decodes first
  CHECK(rows[8].job == 1);
  CHECK(rows[8].n == 40);   // one chunk of the long prompt
  CHECK(rows[9].job == 10);
  CHECK(rows[9].n == 30);   // 100 - 8 - 40 = 52 left: the short prompt fits whole
  CHECK(tokens(rows) == 78);
  auto done = s.complete(rows);
  CHECK(done.size() == 9);  // the decodes and the short prompt
  CHECK(s.waiting() == 1);

  // the long prompt goes on where it stopped, while new decodes keep getting in every step
  int64_t pos = 40;
  for (int step = 0; pos < 300; ++step) {
    s.add(fwd(100 + step, 60, 1, 100 + step));
    rows = s.next();
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].n == 1);
    CHECK(rows[1].job == 1);
    CHECK(rows[1].start == pos);
    pos += rows[1].n;
    s.complete(rows);
  }
  CHECK(pos == 300);
  CHECK(s.waiting() == 0);
  CHECK(s.next().empty());
}

TEST_CASE("row and token limits hold; what does not fit waits for the next step in arrival order") {
  Scheduler s({/*max_batch_tokens*/ 4, /*max_batch_rows*/ 3, /*prefill_chunk*/ 8});
  for (uint64_t j = 1; j <= 5; ++j) s.add(fwd(j, 10, 1, int(j)));
  auto rows = s.next();
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].job == 1);
  CHECK(rows[2].job == 3);
  s.complete(rows);
  rows = s.next();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].job == 4);
  s.complete(rows);
}

TEST_CASE("a failed step drops its forwards; cancel removes a waiting one") {
  Scheduler s({});
  s.add(fwd(1, 0, 5, 0));
  s.add(fwd(2, 5, 1, 1));
  s.add(fwd(3, 0, 9, 2));
  REQUIRE(s.cancel(3));
  CHECK_FALSE(s.cancel(3));
  auto rows = s.next();
  REQUIRE(rows.size() == 2);
  auto failed = s.fail(rows);
  CHECK(failed.size() == 2);
  CHECK(s.waiting() == 0);
  CHECK_THROWS_AS(Scheduler({0, 1, 1}), std::invalid_argument);
}

TEST_CASE("prefill is shared equally by the keys that have prompts waiting, whatever their number of forwards") {
  // key b floods with four long prompts that arrived first; key a has one
  Scheduler s({/*max_batch_tokens*/ 100, /*max_batch_rows*/ 64, /*prefill_chunk*/ 100, /*factor*/ 0, /*max step*/ 0});
  for (uint64_t j = 1; j <= 4; ++j) s.add(fwd(j, 0, 1000, int(j), "key:b"));
  s.add(fwd(9, 0, 1000, 10, "key:a"));
  for (int step = 0; step < 4; ++step) {
    auto rows = s.next();
    int64_t a = 0, b = 0;
    for (const auto& r : rows) (r.job == 9 ? a : b) += r.n;
    CHECK(a == 50);  // half the budget to each key with prefill waiting
    CHECK(b == 50);
    s.complete(rows);
  }
  // a key that needs less than its half leaves the rest to the other
  Scheduler t({100, 64, 100, 0, 0});
  t.add(fwd(1, 0, 1000, 1, "key:b"));
  t.add(fwd(2, 0, 10, 2, "key:a"));
  auto rows = t.next();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].n + rows[1].n == 100);
}

TEST_CASE("decode rows past max_batch_rows go round robin over keys") {
  Scheduler s({/*max_batch_tokens*/ 100, /*max_batch_rows*/ 4, /*prefill_chunk*/ 8});
  for (uint64_t j = 1; j <= 8; ++j) s.add(fwd(j, 10, 1, int(j), "key:b"));  // b's eight decodes first
  s.add(fwd(20, 10, 1, 20, "key:a"));
  s.add(fwd(21, 10, 1, 21, "key:a"));
  auto rows = s.next();
  REQUIRE(rows.size() == 4);
  int a = 0;
  for (const auto& r : rows) a += r.job >= 20;
  CHECK(a == 2);  // not the last in line behind b's eight
}

TEST_CASE("with decode rows in a step, prefill is cut to the measured time budget") {
  SchedulerLimits lim;
  lim.max_batch_tokens = 2048;
  lim.prefill_chunk = 512;
  lim.step_latency_factor = 1.5;
  lim.max_step_seconds = 0;
  lim.min_prefill_tokens = 16;
  Scheduler s(lim);
  // sessions mid-generation, a prefill position's time not yet known: a probe
  s.add(fwd(1, 0, 4000, 0, "key:b"));
  auto rows = s.next(/*decoders_active*/ true);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].n == StepCost::kProbeTokens);
  s.complete(rows);
  // a decode-only step takes 10 ms, a prefill position 0.1 ms more: a 1.5x step has room for 50
  for (int i = 0; i < 50; ++i) s.observe(4, 0, 0.010);
  for (int i = 0; i < 50; ++i) s.observe(0, 100, 0.020);
  CHECK(s.cost().decode_step_seconds() == doctest::Approx(0.010));
  CHECK(s.cost().prefill_token_seconds() == doctest::Approx(0.0001));
  s.add(fwd(2, 10, 1, 1, "key:a"));
  rows = s.next();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].job == 2);
  CHECK(rows[1].n == 50);
  s.complete(rows);
  // no decode waiting and none lately: the whole chunk; sessions mid-generation: capped again
  rows = s.next();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].n == 512);
  s.complete(rows);
  rows = s.next(/*decoders_active*/ true);
  CHECK(rows[0].n == 50);
  s.complete(rows);
  // two positions cost a step as much as 100 do: that is the step's fixed part, more than a 1.5x
  // step allows; on a CPU (no amortize_fixed) the floor still moves prompts on
  for (int i = 0; i < 200; ++i) s.observe(0, 2, 0.020);
  CHECK(s.cost().prefill_overhead_seconds() == doctest::Approx(0.010));
  s.add(fwd(3, 11, 1, 5, "key:a"));
  rows = s.next();
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].n == 16);
  s.complete(rows);
  SchedulerLimits bad;
  bad.step_latency_factor = 0.5;
  CHECK_THROWS_AS(Scheduler{bad}, std::invalid_argument);
}

TEST_CASE("a step's fixed prefill cost does not cut prompts finer step after step") {
  // What an H100 showed (issue 21): a step carrying prefill costs a fixed 5 ms over a 2 ms decode
  // step (it leaves the CUDA graph) plus 0.01 ms a position, but a one-position cut is a decode
  // row (the graph replays): nothing over the decode step. Read as a cost per position, every cut
  // of two or more looked dear and one looked free, so cuts stayed at one: 64 prompts took 15 s.
  SchedulerLimits lim;
  lim.max_batch_tokens = 2048;
  lim.prefill_chunk = 512;
  lim.step_latency_factor = 1.1;
  lim.max_step_seconds = 0.25;
  lim.min_prefill_tokens = 1;
  lim.amortize_fixed_prefill = true;  // stages on CUDA
  Scheduler s(lim);
  auto cost = [](int64_t tokens) { return tokens == 1 ? 0.002 : 0.002 + 0.005 + 0.00001 * double(tokens); };
  for (int i = 0; i < 20; ++i) s.observe(8, 0, 0.002);
  s.observe(0, 128, cost(128));  // a prompt alone, before anyone decoded
  for (int i = 0; i < 50; ++i) s.observe(8, 1, cost(1));  // one position beside decoders: not learnt
  // the fixed part unknown: the cut is what a per-position cost allows, a small one, which teaches it
  s.add(fwd(100, 0, 64, 1));
  auto probe = s.next(/*decoders_active*/ true);
  REQUIRE(probe.size() == 1);
  CHECK(probe[0].n >= 2);
  CHECK(probe[0].n <= StepCost::kSmallPrefill);
  s.observe(8, probe[0].n, cost(probe[0].n));
  s.complete(probe);
  CHECK(s.cost().prefill_overhead_seconds() == doctest::Approx(0.005));
  CHECK(s.cost().prefill_token_seconds() == doctest::Approx(0.00001));
  for (auto rows = s.next(true); !rows.empty(); rows = s.next(true)) s.complete(rows);  // the probe's rest
  for (uint64_t j = 1; j <= 16; ++j) s.add(fwd(j, 0, 128, int(j)));  // 16 prompts, sessions decoding
  int64_t steps = 0, positions = 0;
  while (true) {
    auto rows = s.next(/*decoders_active*/ true);
    if (rows.empty()) break;
    int64_t t = 0;
    for (const auto& r : rows) t += r.n;
    CHECK((t >= 500 || positions + t == 16 * 128));  // what the fixed part is worth (5 / 0.01 ms), not 1
    s.observe(0, t, cost(t));
    s.complete(rows);
    positions += t;
    ++steps;
  }
  CHECK(positions == 16 * 128);
  CHECK(steps <= 5);
}

TEST_CASE("while a step's fixed prefill part is unknown, a prompt is not cut to one position") {
  StepCost c;
  for (int i = 0; i < 10; ++i) c.observe(8, 0, 0.010);
  c.observe(0, 100, 0.110);  // 1 ms a position as far as anyone knows: a 1.1x step has room for 1
  PrefillBudget b;
  b.decodes = true;
  b.factor = 1.1;
  b.ceiling = 512;
  CHECK(c.prefill_budget(b) == 2);  // two: a cut that shows the fixed part
  c.observe(8, 2, 0.012);          // it has none: 1 ms a position, really
  CHECK(c.prefill_overhead_seconds() == doctest::Approx(0.0).epsilon(1e-9));
  CHECK(c.prefill_budget(b) == 1);  // now one is the honest cut
}

TEST_CASE("no step's prefill makes it last longer than max_step_seconds") {
  SchedulerLimits lim;
  lim.max_batch_tokens = 2048;
  lim.prefill_chunk = 2048;
  lim.max_step_seconds = 0.25;
  Scheduler s(lim);
  for (int i = 0; i < 100; ++i) s.observe(0, 100, 0.5);  // 5 ms a position (a CPU with a slow BLAS)
  s.add(fwd(1, 0, 2000, 0));
  auto rows = s.next();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].n == 50);  // 250 ms
  s.complete(rows);
}

TEST_CASE("steps in flight together: disjoint forwards, completed and failed per step, micro-batches capped") {
  Scheduler s({/*max_batch_tokens*/ 100, /*max_batch_rows*/ 64, /*prefill_chunk*/ 40, /*no time caps*/ 0, 0});
  for (uint64_t j = 1; j <= 4; ++j) s.add(fwd(j, 10, 1, int(j)));  // 4 decodes
  s.add(fwd(5, 0, 100, 10));                                         // a prompt of 3 chunks
  const auto a = s.next(false, 3);  // a micro-batch of at most 3 rows
  REQUIRE(a.size() == 3);
  const auto b = s.next(false, 3);  // the rest, while a is in flight: never a forward of a
  REQUIRE(b.size() == 2);
  for (const auto& rb : b)
    for (const auto& ra : a) CHECK(rb.job != ra.job);
  CHECK(s.next().empty());  // everything is in flight
  // b lands first (failed), then a (ran): each touches only its own forwards
  const auto failed = s.fail(b);
  CHECK(failed.size() == 2);
  const auto done = s.complete(a);
  CHECK(done.size() == 3);
  CHECK(s.waiting() == 0);
}

TEST_CASE("a forward whose session ended while its chunk was in flight: re-queued by complete(), then cancelled") {
  // the engine answers the forward when its session ends mid-flight and cancels it after the step
  // lands: complete() puts an unfinished forward back in the queue, cancel() must take it out
  Scheduler s({100, 64, 40, 0, 0});
  s.add(fwd(7, 0, 100, 0));
  const auto rows = s.next();
  REQUIRE(rows.size() == 1);
  CHECK_FALSE(s.cancel(7));  // in flight: not in the queue
  CHECK(s.complete(rows).empty());
  CHECK(s.waiting() == 1);   // back in the queue with 60 positions left
  CHECK(s.cancel(7));
  CHECK(s.next().empty());
}

TEST_CASE("decodes waiting: forwards of one position left; prompts do not count") {
  Scheduler s({100, 64, 40, 0, 0});
  s.add(fwd(1, 0, 300, 5));  // a prompt that has waited long
  CHECK(s.decode_waiting() == 0);
  s.add(fwd(2, 50, 1, 9));
  s.add(fwd(3, 60, 1, 7));
  CHECK(s.decode_waiting() == 2);
}
