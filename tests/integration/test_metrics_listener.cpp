// The daemon's /metrics listener as an attacker meets it (issue 20, items 7b and 8): a 256 MiB
// POST, a 64 MiB header, a million headers and an endless chunked body each get their refusal
// and leave the daemon's peak resident memory where it was; a bearer token keeps the page from
// anyone without it; and SIGTERM stops the daemon within 1 s with a kept-alive scrape connection
// or eight trickling ones open. No LibTorch here.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <functional>
#include <thread>

#include "harness.hpp"

using namespace duet::itest;
using Clock = std::chrono::steady_clock;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

struct Attack {
  int status = -1;       // of the reply, -1 when none came
  uint64_t sent = 0;     // bytes the daemon took before it answered (or closed)
};

// Sends `head`, then `more()` again and again (up to `total` bytes in all) while watching for a
// reply: the attacker stops as soon as the daemon answers or closes, as a real one would have to.
Attack attack(int port, const std::string& head, const std::function<std::string()>& more, uint64_t total) {
  Attack a;
  const int fd = connect_to(port);
  std::string out = head, reply;
  size_t off = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    if (off == out.size()) {
      if (a.sent >= total) break;
      out = more();
      off = 0;
    }
    pollfd pf{fd, static_cast<short>(POLLIN | POLLOUT), 0};
    if (::poll(&pf, 1, 100) <= 0) continue;
    if (pf.revents & POLLIN) break;  // the answer (or the end): read it below
    const ssize_t n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN) break;
    off += n > 0 ? static_cast<size_t>(n) : 0;
    a.sent += n > 0 ? static_cast<uint64_t>(n) : 0;
  }
  char buf[4096];
  for (int i = 0; i < 50 && reply.find("\r\n") == std::string::npos; ++i) {
    pollfd pf{fd, POLLIN, 0};
    if (::poll(&pf, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (reply.rfind("HTTP/1.1 ", 0) == 0 && reply.size() >= 12) a.status = std::stoi(reply.substr(9, 3));
  return a;
}

// One request, the status of its reply (the daemon closes after each refusal).
int status_of(int port, const std::string& request) {
  return attack(port, request, [] { return std::string(); }, 0).status;
}

// Sends SIGTERM and returns the milliseconds until the daemon exited (-1: not within 5 s).
double stop_ms(DaemonProcess& d, int& status) {
  const auto t0 = Clock::now();
  d.process().signal(SIGTERM);
  const auto s = d.process().wait_for(std::chrono::seconds(5));
  status = s ? *s : -1;
  return s ? std::chrono::duration<double, std::milli>(Clock::now() - t0).count() : -1.0;
}

}  // namespace

TEST_CASE("/metrics: a 256 MiB POST, a 64 MiB header, a million headers and a chunked body are refused; memory stays put") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--metrics-listen", "127.0.0.1:0"}));
  INFO(d.log());
  const int port = metrics_port(d);
  REQUIRE(http_get(port, "/metrics").has_value());  // the page once, so its buffers are counted
  const pid_t pid = d.process().pid();
  const int64_t peak_before = proc_status_kib(pid, "VmHWM"), rss_before = proc_status_kib(pid, "VmRSS");
  const std::string mib(1 << 20, 'a');

  const auto post = attack(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 268435456\r\n\r\n",
                           [&] { return mib; }, 256ull << 20);
  const auto big_header = attack(port, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ", [&] { return mib; }, 64ull << 20);
  std::string headers;
  for (int i = 0; i < 1000; ++i) headers += "X-A: b\r\n";
  const auto many = attack(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n", [&] { return headers; }, 8ull << 20);
  const std::string chunk = "100000\r\n" + mib + "\r\n";
  const auto chunked = attack(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                              [&] { return chunk; }, 256ull << 20);
  const int put = status_of(port, "PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  const int other = status_of(port, "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n");

  const int64_t peak_after = proc_status_kib(pid, "VmHWM"), rss_after = proc_status_kib(pid, "VmRSS");
  MESSAGE("POST: " << post.status << " after " << (post.sent >> 10) << " KiB; 64 MiB header: " << big_header.status
                   << " after " << (big_header.sent >> 10) << " KiB; a million headers: " << many.status << " after "
                   << (many.sent >> 10) << " KiB; chunked: " << chunked.status << " after " << (chunked.sent >> 10)
                   << " KiB; daemon peak RSS " << peak_before / 1024 << " -> " << peak_after / 1024 << " MiB, RSS "
                   << rss_before / 1024 << " -> " << rss_after / 1024 << " MiB");
  DOCTEST_CHECK(post.status == 413);
  DOCTEST_CHECK(big_header.status == 431);
  DOCTEST_CHECK(many.status == 431);
  DOCTEST_CHECK(chunked.status == 413);
  DOCTEST_CHECK(put == 405);
  DOCTEST_CHECK(other == 404);
  // the listener holds at most 8 x (12 KiB + one page); the rest is allocator noise
  REQUIRE(peak_after - peak_before < 16 * 1024);
  REQUIRE(http_get(port, "/metrics").has_value());  // and still serves
  REQUIRE(d.stop() == 0);
}

TEST_CASE("/metrics with --metrics-token-file answers only the bearer of that token") {
  const std::string model = fixture_model("llama_gqa");
  TempDir dir;
  { std::ofstream(dir / "token") << "  tok-3f9a1c\n"; }
  DaemonProcess d(secure_args(model, {"--metrics-listen", "127.0.0.1:0", "--metrics-token-file", (dir / "token").string()}));
  INFO(d.log());
  const int port = metrics_port(d);
  REQUIRE(!http_get(port, "/metrics").has_value());
  REQUIRE(status_of(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == 401);
  REQUIRE(status_of(port, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer tok-3f9a1d\r\n\r\n") == 401);
  REQUIRE(status_of(port, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer tok-3f9a1c\r\n\r\n") == 200);
  REQUIRE(d.stop() == 0);
  // a token file without a token stops the daemon at start with a sentence
  { std::ofstream(dir / "empty") << "\n"; }
  const auto r = run_process(cloud_binary(), secure_args(model, {"--metrics-listen", "127.0.0.1:0", "--metrics-token-file",
                                                                 (dir / "empty").string()}));
  REQUIRE(r.status == 1);
  REQUIRE(contains(r.err + r.out, "holds no token"));
}

TEST_CASE("SIGTERM stops the daemon within 1 s with a kept-alive scrape connection open") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--metrics-listen", "127.0.0.1:0"}));
  INFO(d.log());
  const int fd = connect_to(metrics_port(d));
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";  // HTTP/1.1: kept alive, as Prometheus does
  REQUIRE(::send(fd, get.data(), get.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(get.size()));
  std::string reply;
  char buf[4096];
  for (int i = 0; i < 50 && !contains(reply, "duet_peers "); ++i) {
    pollfd pf{fd, POLLIN, 0};
    if (::poll(&pf, 1, 100) > 0) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
  }
  REQUIRE(contains(reply, "HTTP/1.1 200"));
  int status = -1;
  const double ms = stop_ms(d, status);
  ::close(fd);
  MESSAGE("stopped in " << ms << " ms with an idle keep-alive connection");
  REQUIRE(status == 0);
  REQUIRE(ms >= 0);
  REQUIRE(ms < 1000);
}

TEST_CASE("SIGTERM stops the daemon within 1 s while eight connections trickle request headers") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--metrics-listen", "127.0.0.1:0"}));
  INFO(d.log());
  const int port = metrics_port(d);
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i) fds.push_back(connect_to(port));
  std::atomic<bool> stop{false};
  std::thread trickle([&] {  // a byte per connection every 100 ms, never the end of the head
    const std::string head = "GET /metrics HTTP/1.1\r\nX-Slow: " + std::string(10000, 'a');
    for (size_t i = 0; i < head.size() && !stop.load(); ++i) {
      for (int fd : fds) (void)::send(fd, head.data() + i, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  int status = -1;
  const double ms = stop_ms(d, status);
  stop = true;
  trickle.join();
  for (int fd : fds) ::close(fd);
  MESSAGE("stopped in " << ms << " ms with eight trickling connections");
  REQUIRE(status == 0);
  REQUIRE(ms >= 0);
  REQUIRE(ms < 1000);
}
