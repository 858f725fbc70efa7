#pragma once
// The connections the ROUTER socket knows, by routing id, and what each has settled: its hello,
// the client key CURVE proved (ZAP's User-Id), the TCP connection it arrives on, and whether it
// reads its replies. A peer is only transport state: sessions belong to the client key.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "protocol/dtype.hpp"

namespace duet::cloud {

struct Peer {
  std::string user;  // authenticated client (allow-list name); "" when insecure
  bool greeted = false;
  protocol::WireDtype wire_dtype = protocol::WireDtype::f32;
  int fd = -1;  // the TCP connection its last message came on (ZMQ_SRCFD)
  std::chrono::steady_clock::time_point last_seen;
  uint64_t replies_dropped = 0;
  // set at the first reply dropped because its queue was full, cleared by one that gets through
  std::optional<std::chrono::steady_clock::time_point> full_since;
  // warnings about this connection's bad requests: a few per window, the rest counted
  std::chrono::steady_clock::time_point log_window;
  uint32_t logged = 0;
  uint64_t log_suppressed = 0;
};

using PeerMap = std::map<std::string, Peer>;  // routing id -> peer

// Routing ids are client-chosen bytes: print them as hex.
inline std::string hex_id(const std::string& routing_id) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (unsigned char c : routing_id) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

}  // namespace duet::cloud
