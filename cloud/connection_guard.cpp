#include "cloud/connection_guard.hpp"

#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace duet::cloud {

namespace {

// Bytes on the wire per frame beyond its payload, at most: ZMTP long frame header (9) + CURVE's
// MESSAGE command (33) + its command framing. Generous on purpose: this only loosens the bound.
constexpr uint64_t kFrameOverhead = 64;
// Greeting, CURVE handshake (HELLO/WELCOME/INITIATE/READY) and heartbeats, generously.
constexpr uint64_t kConnectionOverhead = 64 << 10;

std::string peer_of(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return {};
  char host[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (a.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a);
    inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    port = ntohs(v6->sin6_port);
  } else {
    return "local";
  }
  return std::string(host) + ":" + std::to_string(port);
}

// The source the per-source handshake cap counts by: the IPv4 address, or the /64 of an IPv6 one
// (one host usually holds a whole /64, so counting its single addresses would not bound it).
std::string source_of(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "unknown";
  char host[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&a)->sin_addr, host, sizeof host);
    return host;
  }
  if (a.ss_family != AF_INET6) return "local";
  in6_addr v6 = reinterpret_cast<sockaddr_in6*>(&a)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    inet_ntop(AF_INET, v6.s6_addr + 12, host, sizeof host);
    return host;
  }
  std::memset(v6.s6_addr + 8, 0, 8);
  inet_ntop(AF_INET6, &v6, host, sizeof host);
  return std::string(host) + "/64";
}

// Bytes the kernel has received on fd (acknowledged to the peer), or -1 when unknown.
int64_t kernel_bytes_received(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return -1;
  if (len < offsetof(tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received) return -1;
  return static_cast<int64_t>(info.tcpi_bytes_received);
}

}  // namespace

ConnectionGuard::ConnectionGuard(zmq::context_t& ctx, zmq::socket_t& router, ConnectionLimits limits)
    : limits_(limits), monitor_(ctx, zmq::socket_type::pair) {
  const std::string ep = "inproc://duet.connection-guard." + std::to_string(reinterpret_cast<uintptr_t>(this));
  const int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  if (zmq_socket_monitor(router.handle(), ep.c_str(), events) != 0)
    throw zmq::error_t();
  monitor_.set(zmq::sockopt::linger, 0);
  monitor_.connect(ep);
}

ConnectionGuard::~ConnectionGuard() = default;

void ConnectionGuard::drain_events() {
  for (;;) {
    zmq::message_t ev, addr;
    if (!monitor_.recv(ev, zmq::recv_flags::dontwait)) return;
    if (ev.more()) (void)monitor_.recv(addr);
    if (ev.size() < 6) continue;
    uint16_t id = 0;
    uint32_t value = 0;
    std::memcpy(&id, ev.data(), 2);
    std::memcpy(&value, static_cast<const char*>(ev.data()) + 2, 4);
    const int fd = static_cast<int>(value);
    switch (id) {
      case ZMQ_EVENT_ACCEPTED: on_accepted(fd); break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: ++stats_.handshakes_ok; break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: ++stats_.handshakes_failed; break;
      case ZMQ_EVENT_DISCONNECTED:
        ++stats_.disconnected;
        conns_.erase(fd);
        closed_.push_back(fd);
        break;
      default: break;
    }
  }
}

void ConnectionGuard::on_accepted(int fd) {
  ++stats_.accepted;
  const auto now = Clock::now();
  Conn c;
  c.peer = peer_of(fd);
  c.source = source_of(fd);
  c.accepted = now;
  // Every accepted connection ends its handshake in exactly one SUCCEEDED or FAILED_* event; the
  // monitor does not say which connection an event is for, so the per-source count is taken from
  // the connections themselves: younger than the handshake timeout and not yet heard from.
  const uint64_t waiting = stats_.accepted - stats_.handshakes_ok - stats_.handshakes_failed;
  if (waiting > limits_.max_handshaking) {
    ++stats_.refused_over_handshake_cap;
    c.refused = true;
  } else if (handshaking_from(c.source, now) >= limits_.max_handshaking_per_source) {
    ++stats_.refused_over_source_cap;
    c.refused = true;
  }
  if (c.refused) ::shutdown(fd, SHUT_RDWR);  // its handshake fails; FAILED and DISCONNECTED follow
  conns_[fd] = std::move(c);
}

uint32_t ConnectionGuard::handshaking_from(const std::string& source, Clock::time_point now) const {
  uint32_t n = 0;
  for (const auto& [fd, c] : conns_)
    if (c.source == source && !c.spoke && !c.refused && now - c.accepted < limits_.handshake_timeout) ++n;
  return n;
}

void ConnectionGuard::note_received(int fd, uint64_t bytes, uint64_t frames) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) {  // its ACCEPTED event may still wait in the monitor
    drain_events();
    it = conns_.find(fd);
  }
  if (it == conns_.end()) return;
  it->second.spoke = true;
  it->second.app_bytes += bytes + frames * kFrameOverhead;
}

bool ConnectionGuard::still_same(int fd, const Conn& c) const { return !c.peer.empty() && peer_of(fd) == c.peer; }

std::vector<std::string> ConnectionGuard::enforce_pending_input() {
  drain_events();  // forget closed descriptors before acting on any
  std::vector<std::string> lines;
  for (auto it = conns_.begin(); it != conns_.end();) {
    const int64_t got = kernel_bytes_received(it->first);
    const uint64_t allowed = it->second.app_bytes + kConnectionOverhead + limits_.max_pending_input_bytes;
    if (got >= 0 && static_cast<uint64_t>(got) > allowed && still_same(it->first, it->second)) {
      lines.push_back("connection " + it->second.peer + " sent " + std::to_string((got - it->second.app_bytes) >> 20) +
                      " MiB that never became a whole message (limit " +
                      std::to_string(limits_.max_pending_input_bytes >> 20) + " MiB): closed");
      ++stats_.dropped_pending_input;
      ::shutdown(it->first, SHUT_RDWR);
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
  return lines;
}

bool ConnectionGuard::drop(int fd) {
  drain_events();
  auto it = conns_.find(fd);
  if (it == conns_.end() || !still_same(fd, it->second)) return false;
  ++stats_.dropped_by_daemon;
  ::shutdown(fd, SHUT_RDWR);
  conns_.erase(it);
  return true;
}

}  // namespace duet::cloud
