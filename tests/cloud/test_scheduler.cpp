// The scheduler's policy: every waiting decode row in each step, prefill chunks oldest first in
// the budget left, a long prefill never holding decodes back, forwards keeping their age.
#include <doctest/doctest.h>

#include <stdexcept>

#include "cloud/scheduler.hpp"

using namespace duet::cloud;
using Clock = std::chrono::steady_clock;

namespace {
ScheduledForward fwd(uint64_t job, int64_t start, int64_t n, int age_ms) {
  ScheduledForward f;
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
  Scheduler s({/*max_batch_tokens*/ 100, /*max_batch_rows*/ 64, /*prefill_chunk*/ 40});
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
