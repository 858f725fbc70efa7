// The batching window's predictions (cloud/decoder_turnaround.hpp): which decoding sessions are
// due back before a deadline, from each one's own smoothed turnaround.
#include <doctest/doctest.h>

#include "cloud/decoder_turnaround.hpp"

using namespace duet::cloud;
using namespace std::chrono_literals;

TEST_CASE("decoder turnaround: a session is due by its own turnaround; a slow one holds no window") {
  DecoderTurnaround d;
  const auto t0 = Clock::time_point{} + 10s;
  // fast (1 ms turnaround) and slow (40 ms, a far link) sessions, each seen once
  d.replied(1, t0);
  d.replied(2, t0);
  d.arrived(1, t0 + 1ms);
  d.arrived(2, t0 + 40ms);
  CHECK(d.due_by(t0 + 100ms) == 0);  // nobody awaited: both are here
  // the next replies leave at t1: the fast one is due within a 4 ms window, the slow one is not
  const auto t1 = t0 + 50ms;
  d.replied(1, t1);
  d.replied(2, t1);
  CHECK(d.due_by(t1 + 4ms) == 1);
  CHECK(d.due_by(t1 + 45ms) == 2);
  d.arrived(1, t1 + 1ms);
  CHECK(d.due_by(t1 + 4ms) == 0);  // the fast one came: nothing else to wait for
  // a session never seen to turn around (its first decode after a prefill) is not predicted
  d.replied(3, t1);
  CHECK(d.due_by(t1 + 45ms) == 1);
  d.forget(2);
  CHECK(d.due_by(t1 + 45ms) == 0);
}

TEST_CASE("decoder turnaround: smoothed, with pauses left out, and counted in the histogram") {
  DecoderTurnaround d;
  auto t = Clock::time_point{} + 10s;
  d.replied(7, t);
  d.arrived(7, t + 2ms);  // 2 ms
  t += 10ms;
  d.replied(7, t);
  d.arrived(7, t + 10ms);  // 10 ms: smoothed to 2 + 0.25 * 8 = 4 ms
  t += 20ms;
  d.replied(7, t);
  CHECK(d.due_by(t + 3900us) == 0);
  CHECK(d.due_by(t + 4100us) == 1);
  d.arrived(7, t + 5s);  // a pause longer than kMemory: not a turnaround
  t += 6s;
  d.replied(7, t);
  CHECK(d.due_by(t + 4100us) == 1);  // the prediction did not move
  const auto& h = d.histogram();
  uint64_t n = 0;
  for (auto c : h) n += c;
  CHECK(n == 2);
  CHECK(d.quantile_ms(0.5) == 2);   // the 2 ms sample's bucket (1, 2]
  CHECK(d.quantile_ms(1.0) == 16);  // the 10 ms sample's bucket (8, 16]
}

TEST_CASE("decoder turnaround: recent() counts sessions replied to within a window and forgets old ones") {
  DecoderTurnaround d;
  const auto t0 = Clock::time_point{} + 10s;
  d.replied(1, t0);
  d.replied(2, t0 + 40ms);
  CHECK(d.recent(t0 + 60ms, 50ms) == 1);
  CHECK(d.recent(t0 + 60ms, 100ms) == 2);
  CHECK(d.recent(t0 + DecoderTurnaround::kMemory + 20ms, DecoderTurnaround::kMemory) == 1);  // 1 forgotten
  d.replied(1, t0 + 3s);
  CHECK(d.due_by(t0 + 3s + 1ms) == 0);  // forgotten, then replied again: no turnaround known
}

TEST_CASE("batching window: wait while holding the decodes waiting costs less than the due sessions' missed step") {
  const double step = 3e-3;
  // two cohorts alternating steps (32 waiting, 32 due back within the window): merge them
  CHECK(worth_waiting(32, 32, 1.5e-3, step));
  // everyone replied to at once, the first back waits for the other 63
  CHECK(worth_waiting(1, 63, 1.5e-3, step));
  // only prompts wait (no decode held): wait for whoever is due
  CHECK(worth_waiting(0, 1, 1.5e-3, step));
  // 63 held for one late session: start now
  CHECK_FALSE(worth_waiting(63, 1, 1.5e-3, step));
  // the balance moves as the window runs out: 10 held, 4 due
  CHECK_FALSE(worth_waiting(10, 4, 1.5e-3, step));  // 15 ms held > 12 ms missed
  CHECK(worth_waiting(10, 4, 1.0e-3, step));        // 10 ms held < 12 ms missed
  // nobody due, or the window closed: no wait
  CHECK_FALSE(worth_waiting(0, 0, 1.5e-3, step));
  CHECK_FALSE(worth_waiting(0, 5, 0.0, step));
}
