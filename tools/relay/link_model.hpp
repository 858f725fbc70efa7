#pragma once
// One direction of an emulated link, as a timetable: given the bytes that arrived and when, when
// they come out at the far end. No sockets here, so it is unit-tested with made-up clocks.
//
//   serialization  a chunk occupies the link for bytes * 8 / rate after the link is free
//                  (rate 0: unlimited, no serialization time)
//   propagation    + delay + jitter, jitter uniform in [-jitter, +jitter], never below 0
//   loss           TCP delivers every byte, so a lost segment shows as a stall: each segment
//                  (kSegmentBytes) is lost with probability `loss`; a chunk with a lost segment
//                  arrives loss_stall later (what retransmission costs; one stall per chunk)
//   order          bytes never overtake each other: a chunk comes out no earlier than the one
//                  before it (so jitter delays what follows a late chunk, as on a real path)
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace duet::lab {

using Clock = std::chrono::steady_clock;
using Micros = std::chrono::microseconds;

inline constexpr std::size_t kSegmentBytes = 1448;  // TCP payload of a 1500-byte Ethernet frame

struct LinkParams {
  double delay_ms = 0;       // one way
  double jitter_ms = 0;      // +- around delay_ms
  double rate_mbit = 0;      // 0: unlimited
  double loss = 0;           // per segment, in [0, 1)
  double loss_stall_ms = -1; // -1: max(2 x round trip, 10 ms), round trip = 2 x delay_ms
  std::uint64_t seed = 1;

  // Throws std::invalid_argument naming the field that is out of range.
  void check() const;
  double stall_ms() const;   // loss_stall_ms with the default resolved
  std::string describe() const;
};

struct LinkStats {
  std::uint64_t chunks = 0, bytes = 0, stalls = 0;
  double added_ms_total = 0;  // sum over chunks of (delivery - arrival)
};

class LinkDirection {
 public:
  explicit LinkDirection(const LinkParams& p);

  // When `bytes` that arrived at `arrival` leave the far end. Call in arrival order.
  Clock::time_point schedule(std::size_t bytes, Clock::time_point arrival);

  // How many bytes to schedule as one piece: with a rate, about 1 ms of link time (at least one
  // segment), so that a large message streams out instead of arriving all at once at its end.
  std::size_t piece_bytes() const { return piece_bytes_; }

  const LinkStats& stats() const { return stats_; }

 private:
  LinkParams p_;
  std::mt19937_64 rng_;
  Micros delay_, jitter_, stall_;
  double us_per_byte_ = 0;  // 0: unlimited
  std::size_t piece_bytes_ = 0;
  Clock::time_point link_free_{}, last_out_{};
  LinkStats stats_;
};

}  // namespace duet::lab
