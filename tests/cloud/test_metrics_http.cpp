// The /metrics listener as an attacker and a scraper meet it: only GET/HEAD /metrics, no body,
// bounded heads, connections and time, an optional bearer token, and a destructor that returns
// at once whatever the connections are doing. In process, short timeouts; no LibTorch.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cloud/metrics_http.hpp"

using namespace duet::cloud;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const std::string kPage = "duet_up 1\n";

int port_of(const MetricsServer& s) { return std::stoi(s.address().substr(s.address().rfind(':') + 1)); }

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

bool put(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Everything the server sends until it closes or `limit` passes.
std::string read_all(int fd, std::chrono::milliseconds limit = 3000ms) {
  std::string got;
  const auto end = Clock::now() + limit;
  char buf[4096];
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// One request on a fresh connection; the whole answer (the server closes after each error).
std::string exchange(int port, const std::string& request) {
  const int fd = connect_to(port);
  put(fd, request);
  ::shutdown(fd, SHUT_WR);
  std::string r = read_all(fd);
  ::close(fd);
  return r;
}

int status_of(const std::string& reply) {
  if (reply.rfind("HTTP/1.1 ", 0) != 0 || reply.size() < 12) return -1;
  return std::stoi(reply.substr(9, 3));
}

MetricsHttpOptions local(std::string token = {}) {
  MetricsHttpOptions o;
  o.address = "127.0.0.1:0";
  o.bearer_token = std::move(token);
  o.head_timeout = 300ms;
  o.idle_timeout = 300ms;
  o.write_timeout = 300ms;
  o.drain_time = 200ms;
  return o;
}

}  // namespace

TEST_CASE("metrics listener: GET and HEAD /metrics, keep-alive, and the right refusal for everything else") {
  MetricsServer s(local(), [] { return kPage; });
  const int port = port_of(s);
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  SUBCASE("two requests on one kept-alive connection") {
    const int fd = connect_to(port);
    REQUIRE(put(fd, get + get));  // pipelined
    std::string got;
    for (int i = 0; i < 40 && got.find(kPage, got.find(kPage) + 1) == std::string::npos; ++i) got += read_all(fd, 50ms);
    ::close(fd);
    CHECK(status_of(got) == 200);
    CHECK(got.find(kPage) != std::string::npos);
    CHECK(got.find(kPage, got.find(kPage) + 1) != std::string::npos);
  }
  SUBCASE("HEAD: the length, no body") {
    const auto r = exchange(port, "HEAD /metrics HTTP/1.1\r\n\r\n");
    CHECK(status_of(r) == 200);
    CHECK(r.find("Content-Length: " + std::to_string(kPage.size())) != std::string::npos);
    CHECK(r.find(kPage) == std::string::npos);
  }
  CHECK(status_of(exchange(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n")) == 200);
  CHECK(status_of(exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")) == 405);
  CHECK(status_of(exchange(port, "DELETE /metrics HTTP/1.1\r\n\r\n")) == 405);
  CHECK(status_of(exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")) == 413);
  CHECK(status_of(exchange(port, "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")) == 413);
  CHECK(status_of(exchange(port, "POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")) == 413);
  CHECK(status_of(exchange(port, "GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n")) == 400);
  CHECK(status_of(exchange(port, "GET /other HTTP/1.1\r\n\r\n")) == 404);
  CHECK(status_of(exchange(port, "GET /metrics HTTP/2.0\r\n\r\n")) == 505);
  CHECK(status_of(exchange(port, "hello\r\n\r\n")) == 400);
  CHECK(status_of(exchange(port, "GET /metrics HTTP/1.1\r\n folded: no\r\n\r\n")) == 400);
  CHECK(status_of(exchange(port, "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a') + "\r\n\r\n")) == 431);
  std::string many = "GET /metrics HTTP/1.1\r\n";
  for (int i = 0; i < 65; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  CHECK(status_of(exchange(port, many + "\r\n")) == 431);
  // still serving
  CHECK(status_of(exchange(port, get)) == 200);
}

TEST_CASE("metrics listener: with a bearer token, only that token gets the page") {
  MetricsServer s(local("s3cret-token"), [] { return kPage; });
  const int port = port_of(s);
  const auto none = exchange(port, "GET /metrics HTTP/1.1\r\n\r\n");
  CHECK(status_of(none) == 401);
  CHECK(none.find("WWW-Authenticate: Bearer") != std::string::npos);
  CHECK(none.find(kPage) == std::string::npos);
  CHECK(status_of(exchange(port, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret-tokeN\r\n\r\n")) == 401);
  CHECK(status_of(exchange(port, "GET /metrics HTTP/1.1\r\nAuthorization: Basic s3cret-token\r\n\r\n")) == 401);
  const auto ok = exchange(port, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret-token\r\nConnection: close\r\n\r\n");
  CHECK(status_of(ok) == 200);
  CHECK(ok.find(kPage) != std::string::npos);
}

TEST_CASE("metrics listener: connections past the cap get 503; slow, idle and non-reading ones are closed in time") {
  auto o = local();
  o.max_connections = 4;
  constexpr size_t kBigPage = 32u << 20;  // larger than the socket buffers
  MetricsServer s(o, [] { return std::string(kBigPage, 'm'); });
  const int port = port_of(s);
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) held.push_back(connect_to(port));
  std::this_thread::sleep_for(50ms);
  const int extra = connect_to(port);
  CHECK(status_of(read_all(extra, 1000ms)) == 503);
  ::close(extra);

  // held[0] trickles its head a byte at a time; held[1] asks for the page and never reads it;
  // held[2] and held[3] send nothing. All are closed within the timeouts (300 ms each) + slack.
  const auto t0 = Clock::now();
  REQUIRE(put(held[1], "GET /metrics HTTP/1.1\r\n\r\n"));
  const std::string head = "GET /metrics HTTP/1.1\r\nX-Slow: " + std::string(100, 'a');
  bool cut = false;
  for (size_t i = 0; i < head.size() && !cut; ++i) {
    cut = !put(held[0], head.substr(i, 1));
    pollfd p{held[0], POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) cut = true;  // the 408 (or the close) came
  }
  const double cut_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  MESSAGE("trickling head cut after " << cut_ms << " ms");
  CHECK(cut);
  CHECK(cut_ms < 1500);
  CHECK(status_of(read_all(held[0], 1000ms)) == 408);
  // held[1] reads nothing until its write timeout (300 ms) is long past: the server gave up on it
  std::this_thread::sleep_for(600ms);
  for (int i = 1; i < 4; ++i) {
    size_t got = 0;
    bool ended = false;
    for (int k = 0; k < 2000 && !ended; ++k) {
      char buf[65536];
      pollfd p{held[i], POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::recv(held[i], buf, sizeof buf, 0);
      ended = n <= 0;
      got += n > 0 ? static_cast<size_t>(n) : 0;
    }
    CHECK(ended);
    if (i == 1) CHECK(got < kBigPage);
    else CHECK(got == 0);
    ::close(held[i]);
  }
  CHECK(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() < 4000);
  // the slots are free again
  CHECK(status_of(exchange(port, "HEAD /metrics HTTP/1.1\r\n\r\n")) == 200);
}

TEST_CASE("metrics listener: destroyed at once with a kept-alive, a trickling and a non-reading connection open") {
  auto o = local();
  o.head_timeout = o.idle_timeout = o.write_timeout = 10s;
  auto s = std::make_unique<MetricsServer>(o, [] { return std::string(8 << 20, 'm'); });
  const int port = port_of(*s);
  const int idle = connect_to(port), slow = connect_to(port), hog = connect_to(port);
  REQUIRE(put(idle, "HEAD /metrics HTTP/1.1\r\n\r\n"));
  REQUIRE(status_of(read_all(idle, 300ms)) == 200);  // kept alive afterwards
  REQUIRE(put(slow, "GET /metr"));
  REQUIRE(put(hog, "GET /metrics HTTP/1.1\r\n\r\n"));
  std::this_thread::sleep_for(100ms);
  const auto t0 = Clock::now();
  s.reset();
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  MESSAGE("listener stopped in " << ms << " ms");
  CHECK(ms < 200);
  for (int fd : {idle, slow, hog}) ::close(fd);
}

TEST_CASE("metrics listener: a bad address or token file is refused with a sentence") {
  auto o = local();
  o.address = "127.0.0.1";
  CHECK_THROWS_WITH_AS(MetricsServer(o, [] { return kPage; }), doctest::Contains("HOST:PORT"), std::invalid_argument);
  o.address = "127.0.0.1:99999";
  CHECK_THROWS_WITH_AS(MetricsServer(o, [] { return kPage; }), doctest::Contains("0 to 65535"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(read_bearer_token_file("/nonexistent/token"), doctest::Contains("cannot be read"),
                       std::invalid_argument);
}
