#pragma once
// What libzmq does not bound for a ROUTER socket, bounded here per TCP connection:
//   - connections still in their handshake: at most max_handshaking_per_source from one source
//     address (an IPv4 address, an IPv6 /64) and max_handshaking over all, at once
//     (ZMQ_HANDSHAKE_IVL closes each after the handshake timeout; this caps how many can wait at
//     the same time, so one source that keeps silent connections open cannot lock others out);
//   - bytes a connection has sent that the daemon has not yet received as whole messages: a
//     partial multipart message is invisible to the application until its last frame (libzmq
//     queues it without limit), and ZMQ_RCVHWM counts only whole messages;
//   - a connection the daemon decides to drop (a peer that never reads its replies).
// libzmq has no call to close one connection of a ROUTER. The guard learns every accepted
// connection's file descriptor from the socket monitor (ZMQ_EVENT_ACCEPTED), maps messages to
// connections with ZMQ_SRCFD, reads the kernel's byte count (TCP_INFO), and drops a connection
// with shutdown(2): libzmq then sees the connection fail and tears it down itself (and a
// DISCONNECTED event follows). No LibTorch here.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

namespace duet::cloud {

struct ConnectionLimits {
  uint32_t max_handshaking = 1024;           // connections accepted but not yet through CURVE + ZAP
  uint32_t max_handshaking_per_source = 8;   // the same, from one source address (IPv4, IPv6 /64)
  std::chrono::milliseconds handshake_timeout{3000};  // ZMQ_HANDSHAKE_IVL: older connections are through
  uint64_t max_pending_input_bytes = 256ull << 20;  // received by the kernel, not yet a whole message
};

struct ConnectionStats {
  uint64_t accepted = 0, handshakes_ok = 0, handshakes_failed = 0, disconnected = 0;
  uint64_t refused_over_handshake_cap = 0, refused_over_source_cap = 0;
  uint64_t dropped_pending_input = 0, dropped_by_daemon = 0;
};

class ConnectionGuard {
 public:
  // Starts monitoring `router` (call before bind, on the socket's thread).
  ConnectionGuard(zmq::context_t& ctx, zmq::socket_t& router, ConnectionLimits limits);
  ~ConnectionGuard();
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // The monitor socket, to poll beside the router; call drain_events() when it is readable.
  zmq::socket_t& monitor() { return monitor_; }
  void drain_events();
  // Connections open and still in their handshake, from the monitor's counts.
  uint32_t handshaking() const {
    return static_cast<uint32_t>(stats_.accepted - stats_.handshakes_ok - stats_.handshakes_failed);
  }

  // A whole message of `bytes` payload in `frames` frames arrived from connection fd (ZMQ_SRCFD).
  void note_received(int fd, uint64_t bytes, uint64_t frames);
  // Drops connections holding more unreceived input than the limit; returns a line per drop.
  std::vector<std::string> enforce_pending_input();
  // Closes connection fd on the daemon's decision (e.g. it never reads its replies).
  bool drop(int fd);

  const ConnectionStats& stats() const { return stats_; }
  // Descriptors of the connections that closed since the last call (their queued work is dropped).
  std::vector<int> take_closed() { return std::exchange(closed_, {}); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Conn {
    std::string peer;          // "ip:port" from getpeername at accept: guards against fd reuse
    std::string source;        // the address the per-source cap counts by
    Clock::time_point accepted;
    bool spoke = false;        // a whole message came from it: its handshake is done
    bool refused = false;      // closed at accept; gone once its DISCONNECTED event comes
    uint64_t app_bytes = 0;    // payload of whole messages received, plus per-frame overhead
  };
  void on_accepted(int fd);
  uint32_t handshaking_from(const std::string& source, Clock::time_point now) const;
  bool still_same(int fd, const Conn& c) const;
  ConnectionLimits limits_;
  zmq::socket_t monitor_;
  std::map<int, Conn> conns_;
  ConnectionStats stats_;
  std::vector<int> closed_;
};

}  // namespace duet::cloud
