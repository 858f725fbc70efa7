#include "relay.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <vector>

namespace duet::lab {

namespace {

constexpr uint64_t kListenTag = 0, kTimerTag = 1, kStopTag = ~uint64_t(0);

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

sockaddr_in to_sockaddr(const Endpoint& e) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(e.port);
  if (inet_pton(AF_INET, e.host.c_str(), &a.sin_addr) != 1)
    throw std::invalid_argument("'" + e.host + "' is not an IPv4 address");
  return a;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // the relay adds its own delay, not Nagle's
}

// Connects with a deadline; returns the socket (non-blocking) or -1 with errno set.
int connect_with_timeout(const Endpoint& to, int timeout_ms) {
  const sockaddr_in a = to_sockaddr(to);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return fd;
  if (errno != EINPROGRESS) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  const int r = poll(&p, 1, timeout_ms);
  int err = 0;
  socklen_t len = sizeof err;
  if (r <= 0) err = r == 0 ? ETIMEDOUT : errno;
  else getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

void add_stats(LinkStats& to, const LinkStats& s) {
  to.chunks += s.chunks;
  to.bytes += s.bytes;
  to.stalls += s.stalls;
  to.added_ms_total += s.added_ms_total;
}

}  // namespace

Endpoint Endpoint::parse(const std::string& text, bool port_may_be_zero) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    throw std::invalid_argument("'" + text + "' is not HOST:PORT (e.g. 127.0.0.1:7701)");
  Endpoint e;
  e.host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 || std::stoul(port) > 65535 ||
      (!port_may_be_zero && std::stoul(port) == 0))
    throw std::invalid_argument("port '" + port + "' in '" + text + "' is not " +
                                (port_may_be_zero ? "0..65535" : "1..65535"));
  e.port = static_cast<uint16_t>(std::stoul(port));
  to_sockaddr(e);  // the host must be an IPv4 literal
  return e;
}

struct Chunk {
  Clock::time_point due;
  std::string data;
  std::size_t off = 0;
};

struct Direction {
  explicit Direction(const LinkParams& p) : link(p) {}
  LinkDirection link;
  std::deque<Chunk> queue;
  std::size_t queued = 0;
  bool src_eof = false;  // the sender closed its side
  bool shut = false;     // ... and everything was delivered, the receiver's side shut down
  bool blocked = false;  // the last write found the receiver's socket full
};

struct Relay::Pair {
  Pair(const LinkParams& up, const LinkParams& down) : dir{Direction(up), Direction(down)} {}
  uint64_t id = 0;
  int fd[2] = {-1, -1};  // 0: accepted (edge side), 1: upstream
  Direction dir[2];      // dir[i]: bytes read from fd[i], written to fd[1 - i]
  // what each socket is registered for; 0: not in the epoll set (EPOLLHUP would be reported
  // however the mask is set, and a socket with nothing left to read would wake the loop for nothing)
  uint32_t interest[2] = {0, 0};
  bool dead = false;
};

Relay::Relay(RelayOptions opts) : opts_(std::move(opts)) {
  opts_.up.check();
  opts_.down.check();
  const sockaddr_in a = to_sockaddr(opts_.listen);
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw sys_error("socket");
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
    throw sys_error("cannot listen on " + opts_.listen.str());
  if (listen(listen_fd_, 64) != 0) throw sys_error("listen on " + opts_.listen.str());
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.sin_port);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epoll_fd_ < 0 || timer_fd_ < 0) throw sys_error("epoll/timerfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kTimerTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev);
}

Relay::~Relay() {
  for (auto& [id, p] : pairs_)
    for (int fd : p->fd)
      if (fd >= 0) close(fd);
  for (int fd : {listen_fd_, epoll_fd_, timer_fd_})
    if (fd >= 0) close(fd);
}

void Relay::run(int stop_fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kStopTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd, &ev);
  std::vector<epoll_event> events(64);
  for (;;) {
    arm_timer();
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw sys_error("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kStopTag) return;
      on_event(events[i].data.u64, events[i].events);
    }
    // deliver whatever is due on every connection, then settle what each socket waits for
    std::vector<uint64_t> done;
    for (auto& [id, p] : pairs_) {
      for (int side = 0; side < 2 && !p->dead; ++side) flush(*p, side);
      if (p->dead || (p->dir[0].shut && p->dir[1].shut)) done.push_back(id);
      else update_interest(*p);
    }
    for (uint64_t id : done) close_pair(id);
  }
}

void Relay::on_event(uint64_t tag, uint32_t events) {
  if (tag == kListenTag) return accept_all();
  if (tag == kTimerTag) {
    uint64_t expirations;
    while (read(timer_fd_, &expirations, sizeof expirations) > 0) {
    }
    return;
  }
  auto it = pairs_.find(tag >> 1);
  if (it == pairs_.end()) return;
  Pair& p = *it->second;
  const int side = static_cast<int>(tag & 1);
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_side(p, side);
  if (!p.dead && (events & EPOLLOUT)) p.dir[1 - side].blocked = false;  // flush() writes again
}

void Relay::accept_all() {
  for (;;) {
    const int c = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;  // EAGAIN, or a connection that went away: nothing to do
    const int u = connect_with_timeout(opts_.upstream, opts_.connect_timeout_ms);
    if (u < 0) {
      std::fprintf(stderr, "duet-relay: cannot connect to %s: %s; closing the accepted connection\n",
                   opts_.upstream.str().c_str(), std::strerror(errno));
      ++totals_.refused_upstream;
      close(c);
      continue;
    }
    set_nodelay(c);
    set_nodelay(u);
    set_nonblocking(u);
    const uint64_t id = next_id_++;
    LinkParams up = opts_.up, down = opts_.down;
    up.seed += 2 * id;  // each connection its own random stream, reproducible from the seed
    down.seed += 2 * id + 1;
    auto p = std::make_unique<Pair>(up, down);
    p->id = id;
    p->fd[0] = c;
    p->fd[1] = u;
    for (int side = 0; side < 2; ++side) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = (id << 1) | static_cast<uint64_t>(side);
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, p->fd[side], &ev);
      p->interest[side] = EPOLLIN;
    }
    pairs_.emplace(id, std::move(p));
    ++totals_.connections;
  }
}

void Relay::read_side(Pair& p, int side) {
  Direction& d = p.dir[side];
  if (d.src_eof) return;
  std::string buf;
  while (d.queued < opts_.max_queued_bytes) {
    buf.resize(d.link.piece_bytes());
    const ssize_t n = read(p.fd[side], buf.data(), buf.size());
    if (n > 0) {
      buf.resize(static_cast<std::size_t>(n));
      const Clock::time_point due = d.link.schedule(buf.size(), Clock::now());
      d.queued += buf.size();
      d.queue.push_back(Chunk{due, std::move(buf), 0});
      buf = std::string();
      continue;
    }
    if (n == 0) {
      d.src_eof = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      p.dead = true;  // reset by the peer: end both sides
    }
    return;
  }
}

void Relay::flush(Pair& p, int side) {
  Direction& d = p.dir[side];
  const int to = p.fd[1 - side];
  const Clock::time_point now = Clock::now();
  while (!d.blocked && !d.queue.empty() && d.queue.front().due <= now) {
    Chunk& c = d.queue.front();
    const ssize_t n = send(to, c.data.data() + c.off, c.data.size() - c.off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) d.blocked = true;
      else if (errno != EINTR) p.dead = true;
      return;
    }
    if (c.off == 0) {  // how late the chunk's first byte left, against its timetable
      const double late = std::chrono::duration<double, std::milli>(now - c.due).count();
      totals_.late_ms_total += late;
      totals_.late_ms_max = std::max(totals_.late_ms_max, late);
      ++totals_.late_samples;
    }
    c.off += static_cast<std::size_t>(n);
    if (c.off == c.data.size()) {
      d.queued -= c.data.size();
      d.queue.pop_front();
    }
  }
  if (d.queue.empty() && d.src_eof && !d.shut) {
    shutdown(to, SHUT_WR);
    d.shut = true;
  }
}

void Relay::update_interest(Pair& p) {
  for (int side = 0; side < 2; ++side) {
    uint32_t want = 0;
    if (!p.dir[side].src_eof && p.dir[side].queued < opts_.max_queued_bytes) want |= EPOLLIN;
    if (p.dir[1 - side].blocked) want |= EPOLLOUT;
    if (want == p.interest[side]) continue;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = (p.id << 1) | static_cast<uint64_t>(side);
    const int op = want == 0 ? EPOLL_CTL_DEL : p.interest[side] == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    epoll_ctl(epoll_fd_, op, p.fd[side], &ev);
    p.interest[side] = want;
  }
}

void Relay::arm_timer() {
  // the earliest chunk that is waiting for its time (not for a full socket)
  Clock::time_point next = Clock::time_point::max();
  for (const auto& [id, p] : pairs_)
    for (const auto& d : p->dir)
      if (!d.blocked && !d.queue.empty()) next = std::min(next, d.queue.front().due);
  itimerspec t{};
  if (next != Clock::time_point::max()) {
    // steady_clock is CLOCK_MONOTONIC: its epoch is the timer's
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(next.time_since_epoch()).count();
    if (ns <= 0) ns = 1;
    t.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
    t.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
    if (t.it_value.tv_sec == 0 && t.it_value.tv_nsec == 0) t.it_value.tv_nsec = 1;
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &t, nullptr);  // all zero: disarmed
}

void Relay::close_pair(uint64_t id) {
  auto it = pairs_.find(id);
  if (it == pairs_.end()) return;
  Pair& p = *it->second;
  add_stats(totals_.up, p.dir[0].link.stats());
  add_stats(totals_.down, p.dir[1].link.stats());
  for (int& fd : p.fd) {
    close(fd);  // also leaves the epoll set
    fd = -1;
  }
  pairs_.erase(it);
}

}  // namespace duet::lab
