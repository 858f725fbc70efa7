#pragma once
// A delaying TCP relay: accepts on one address, connects each accepted connection onward to
// another, and carries the bytes both ways through a LinkDirection each (delay, jitter, rate,
// loss as a stall), in order. One thread, epoll; the delivery clock is a timerfd armed at the
// earliest due chunk (microsecond resolution, so a 0.5 ms delay is 0.5 ms).
//
// Used where the kernel has no netem (docs/LINKS.md): the lab puts it on the edge's side of a
// veth pair shaped by tc tbf, or alone on loopback (rate emulated here too).
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "link_model.hpp"

namespace duet::lab {

struct Endpoint {
  std::string host;  // IPv4 literal
  uint16_t port = 0;
  // "HOST:PORT"; throws std::invalid_argument saying what was wrong
  static Endpoint parse(const std::string& text, bool port_may_be_zero);
  std::string str() const { return host + ":" + std::to_string(port); }
};

struct RelayOptions {
  Endpoint listen, upstream;
  LinkParams up, down;  // up: accepted side -> upstream; down: upstream -> accepted side
  std::size_t max_queued_bytes = 256u << 20;  // per direction; reading pauses beyond it
  int connect_timeout_ms = 5000;
};

struct RelayTotals {
  uint64_t connections = 0, refused_upstream = 0;
  LinkStats up, down;  // summed over connections
  // how much later than due chunks were written (the relay's own scheduling error: a busy CPU)
  double late_ms_total = 0, late_ms_max = 0;
  uint64_t late_samples = 0;
};

class Relay {
 public:
  explicit Relay(RelayOptions opts);  // binds and listens; throws std::runtime_error
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  uint16_t port() const { return port_; }  // the bound port (useful with port 0)
  // Serves until stop_fd (e.g. a signalfd) becomes readable.
  void run(int stop_fd);
  const RelayTotals& totals() const { return totals_; }

 private:
  struct Pair;
  void accept_all();
  void on_event(uint64_t tag, uint32_t events);
  void read_side(Pair& p, int side);
  void flush(Pair& p, int side);  // data that came in on `side`, out to the other side
  void update_interest(Pair& p);
  void arm_timer();
  void close_pair(uint64_t id);

  RelayOptions opts_;
  int listen_fd_ = -1, epoll_fd_ = -1, timer_fd_ = -1;
  uint16_t port_ = 0;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Pair>> pairs_;
  RelayTotals totals_;
};

}  // namespace duet::lab
