// The relay's timetable: each rule of link_model.hpp on made-up clocks.
#include <doctest/doctest.h>

#include <stdexcept>

#include "link_model.hpp"

using namespace duet::lab;
using std::chrono::microseconds;
using std::chrono::milliseconds;

namespace {
double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
const Clock::time_point t0 = Clock::time_point(std::chrono::seconds(1000));
}  // namespace

TEST_CASE("delay alone: every chunk comes out exactly delay later") {
  LinkParams p;
  p.delay_ms = 20;
  LinkDirection d(p);
  CHECK(ms_between(t0, d.schedule(100, t0)) == doctest::Approx(20));
  CHECK(ms_between(t0, d.schedule(1 << 20, t0 + milliseconds(1))) == doctest::Approx(21));  // no rate: size is free
  CHECK(d.stats().chunks == 2);
  CHECK(d.stats().stalls == 0);
}

TEST_CASE("rate: chunks queue behind each other for bytes * 8 / rate") {
  LinkParams p;
  p.rate_mbit = 10;  // 10 bit/us: 1250 bytes take 1 ms
  p.delay_ms = 5;
  LinkDirection d(p);
  CHECK(ms_between(t0, d.schedule(1250, t0)) == doctest::Approx(6));
  CHECK(ms_between(t0, d.schedule(1250, t0)) == doctest::Approx(7));  // waited for the first
  // after the link went idle, no queueing
  CHECK(ms_between(t0, d.schedule(1250, t0 + milliseconds(100))) == doctest::Approx(106));
  CHECK(d.piece_bytes() == kSegmentBytes);  // 1 ms of 10 Mbit/s is less than a segment
  LinkParams g;
  g.rate_mbit = 1000;
  CHECK(LinkDirection(g).piece_bytes() == 125000);  // 1 ms at 1 Gbit/s
}

TEST_CASE("jitter stays within its bounds and never reorders") {
  LinkParams p;
  p.delay_ms = 10;
  p.jitter_ms = 4;
  p.seed = 7;
  LinkDirection d(p);
  Clock::time_point last{};
  double lo = 1e9, hi = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto at = t0 + microseconds(i * 50);  // faster than the jitter: order matters
    const auto out = d.schedule(64, at);
    CHECK(out >= last);
    last = out;
    const double added = ms_between(at, out);
    lo = std::min(lo, added);
    hi = std::max(hi, added);
  }
  CHECK(lo >= 6.0);
  CHECK(hi <= 14.0 + 1e-6);  // held behind a late chunk, never later than that chunk: still <= delay + jitter
  CHECK(hi > 10.5);                 // jitter happened
  const double mean = d.stats().added_ms_total / double(d.stats().chunks);
  CHECK(mean >= 10.0);  // holding back never speeds anything up
}

TEST_CASE("loss: a chunk with a lost segment stalls, at about the configured rate") {
  LinkParams p;
  p.delay_ms = 5;
  p.loss = 0.1;
  p.seed = 3;
  CHECK(p.stall_ms() == doctest::Approx(20));  // default: 2 x RTT, RTT = 2 x 5 ms
  LinkDirection d(p);
  int stalled = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const auto at = t0 + milliseconds(100 * i);  // far apart: no order effects
    if (ms_between(at, d.schedule(100, at)) > 24) ++stalled;
  }
  CHECK(stalled == static_cast<int>(d.stats().stalls));
  CHECK(stalled > n * 0.08);
  CHECK(stalled < n * 0.12);
  // ten segments: a stall when any of them is lost, 1 - 0.9^10 = 65 %
  LinkDirection big(p);
  int big_stalled = 0;
  for (int i = 0; i < 1000; ++i)
    if (ms_between(t0, big.schedule(10 * kSegmentBytes, t0 + milliseconds(100 * i)) - milliseconds(100 * i)) > 24)
      ++big_stalled;
  CHECK(big_stalled > 580);
  CHECK(big_stalled < 720);
}

TEST_CASE("same seed, same timetable") {
  LinkParams p;
  p.delay_ms = 3;
  p.jitter_ms = 2;
  p.loss = 0.05;
  p.seed = 11;
  LinkDirection a(p), b(p);
  for (int i = 0; i < 100; ++i) CHECK(a.schedule(3000, t0 + milliseconds(i)) == b.schedule(3000, t0 + milliseconds(i)));
}

TEST_CASE("out-of-range settings are refused with the field named") {
  auto refused = [](LinkParams p, const char* word) {
    try {
      LinkDirection d(p);
      return false;
    } catch (const std::invalid_argument& e) {
      return std::string(e.what()).find(word) != std::string::npos;
    }
  };
  LinkParams p;
  p.delay_ms = -1;
  CHECK(refused(p, "delay"));
  p = LinkParams{};
  p.jitter_ms = 1e9;
  CHECK(refused(p, "jitter"));
  p = LinkParams{};
  p.loss = 1.0;
  CHECK(refused(p, "loss"));
  p = LinkParams{};
  p.rate_mbit = -3;
  CHECK(refused(p, "rate"));
  p = LinkParams{};
  p.loss_stall_ms = -2;
  CHECK(refused(p, "stall"));
}
