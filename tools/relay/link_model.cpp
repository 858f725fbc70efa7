#include "link_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace duet::lab {

namespace {
Micros us(double ms) { return Micros(static_cast<int64_t>(std::llround(ms * 1000.0))); }

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

const LinkParams& checked(const LinkParams& p) {
  p.check();
  return p;
}
}  // namespace

void LinkParams::check() const {
  require(std::isfinite(delay_ms) && delay_ms >= 0 && delay_ms <= 60000,
          "delay " + std::to_string(delay_ms) + " ms is out of range: give 0 to 60000 ms (one way)");
  require(std::isfinite(jitter_ms) && jitter_ms >= 0 && jitter_ms <= 60000,
          "jitter " + std::to_string(jitter_ms) + " ms is out of range: give 0 to 60000 ms");
  require(std::isfinite(rate_mbit) && rate_mbit >= 0 && rate_mbit <= 1e6,
          "rate " + std::to_string(rate_mbit) + " Mbit/s is out of range: give 0 (unlimited) to 1000000");
  require(std::isfinite(loss) && loss >= 0 && loss < 1,
          "loss " + std::to_string(loss) + " is out of range: give a probability per segment in [0, 1)");
  require(loss_stall_ms == -1 || (std::isfinite(loss_stall_ms) && loss_stall_ms >= 0 && loss_stall_ms <= 60000),
          "loss stall " + std::to_string(loss_stall_ms) + " ms is out of range: give 0 to 60000 ms (or -1: default)");
}

double LinkParams::stall_ms() const {
  return loss_stall_ms >= 0 ? loss_stall_ms : std::max(2.0 * (2.0 * delay_ms), 10.0);
}

std::string LinkParams::describe() const {
  char buf[200];
  std::snprintf(buf, sizeof buf, "delay %.3f ms +- %.3f ms one way, rate %s, loss %.4f (stall %.1f ms)", delay_ms,
                jitter_ms, rate_mbit > 0 ? (std::to_string(rate_mbit) + " Mbit/s").c_str() : "unlimited", loss,
                stall_ms());
  return buf;
}

LinkDirection::LinkDirection(const LinkParams& p)
    : p_(checked(p)), rng_(p.seed), delay_(us(p.delay_ms)), jitter_(us(p.jitter_ms)), stall_(us(p.stall_ms())) {
  if (p.rate_mbit > 0) {
    us_per_byte_ = 8.0 / p.rate_mbit;  // Mbit/s = bit/us
    piece_bytes_ = std::max<std::size_t>(kSegmentBytes, static_cast<std::size_t>(p.rate_mbit * 1000.0 / 8.0));
  } else {
    piece_bytes_ = 256 * 1024;
  }
}

Clock::time_point LinkDirection::schedule(std::size_t bytes, Clock::time_point arrival) {
  // serialization: the link carries one chunk at a time
  Clock::time_point sent = arrival;
  if (us_per_byte_ > 0) {
    const Clock::time_point start = std::max(arrival, link_free_);
    sent = start + Micros(static_cast<int64_t>(std::llround(double(bytes) * us_per_byte_)));
    link_free_ = sent;
  }
  // propagation with jitter
  Micros prop = delay_;
  if (jitter_.count() > 0) {
    std::uniform_int_distribution<int64_t> d(-jitter_.count(), jitter_.count());
    prop = std::max(Micros(0), prop + Micros(d(rng_)));
  }
  Clock::time_point out = sent + prop;
  // loss: one stall when any of the chunk's segments is lost
  if (p_.loss > 0) {
    const std::size_t segments = std::max<std::size_t>(1, (bytes + kSegmentBytes - 1) / kSegmentBytes);
    std::bernoulli_distribution lost(p_.loss);
    bool any = false;
    for (std::size_t i = 0; i < segments && !any; ++i) any = lost(rng_);
    if (any) {
      out += stall_;
      ++stats_.stalls;
    }
  }
  out = std::max(out, last_out_);  // in order
  last_out_ = out;
  ++stats_.chunks;
  stats_.bytes += bytes;
  stats_.added_ms_total += std::chrono::duration<double, std::milli>(out - arrival).count();
  return out;
}

}  // namespace duet::lab
