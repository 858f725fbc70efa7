#include "cloud/metrics_http.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <list>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

namespace duet::cloud {

namespace {

using Clock = std::chrono::steady_clock;

const char* reason_of(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

std::string http_reply(int status, const std::string& body, bool head_only, bool close, const std::string& extra = {},
                       const char* type = "text/plain; charset=utf-8") {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason_of(status) + "\r\nContent-Type: " + type +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
                  (close ? "Connection: close\r\n" : "") + "\r\n";
  if (!head_only) r += body;
  return r;
}

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct Request {
  std::string method, path, authorization;
  bool keep_alive = true;
  bool has_body = false;
};

// Parses a request head (without its blank line). Returns 0, or the status to answer with `why`.
int parse_head(std::string_view head, size_t max_headers, Request& r, std::string& why) {
  auto fail = [&why](int status, std::string what) {
    why = std::move(what);
    return status;
  };
  size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const size_t a = line.find(' '), b = line.rfind(' ');
  if (a == std::string_view::npos || a == b || a == 0) return fail(400, "malformed request line");
  r.method = std::string(line.substr(0, a));
  const std::string_view target = line.substr(a + 1, b - a - 1), version = line.substr(b + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0")
    return fail(version.rfind("HTTP/", 0) == 0 ? 505 : 400, "HTTP/1.0 or HTTP/1.1 only");
  r.keep_alive = version == "HTTP/1.1";  // HTTP/1.0 closes after each reply
  r.path = std::string(target.substr(0, target.find('?')));
  size_t headers = 0;
  while (eol != std::string_view::npos) {
    const size_t start = eol + 2;
    eol = head.find("\r\n", start);
    const std::string_view h = head.substr(start, eol == std::string_view::npos ? std::string_view::npos : eol - start);
    if (++headers > max_headers) return fail(431, "more than " + std::to_string(max_headers) + " header lines");
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0 || h.front() == ' ' || h.front() == '\t')
      return fail(400, "malformed header line");
    const std::string name = lower(h.substr(0, colon));
    const std::string_view value = trim(h.substr(colon + 1));
    if (name == "content-length") {
      if (value.empty() || value.find_first_not_of("0123456789") != std::string_view::npos)
        return fail(400, "malformed Content-Length");
      if (value.find_first_not_of('0') != std::string_view::npos) r.has_body = true;
    } else if (name == "transfer-encoding") {
      r.has_body = true;
    } else if (name == "connection") {
      if (lower(value).find("close") != std::string::npos) r.keep_alive = false;
    } else if (name == "authorization") {
      r.authorization = std::string(value);
    }
  }
  return 0;
}

bool token_matches(const std::string& authorization, const std::string& token) {
  const std::string want = "Bearer " + token;
  return authorization.size() == want.size() && CRYPTO_memcmp(authorization.data(), want.data(), want.size()) == 0;
}

struct Conn {
  enum class State { reading, writing, draining };
  int fd = -1;
  State state = State::reading;
  std::string in;   // the request head so far (bounded by max_head_bytes + one read)
  std::string out;  // the reply not yet sent
  size_t sent = 0;
  bool close_after = false;
  bool request_started = false;  // a byte of the next request has come (idle -> head timeout)
  Clock::time_point deadline;
};

}  // namespace

struct MetricsServer::Impl {
  MetricsHttpOptions opt;
  std::function<std::string()> render;
  std::string host;
  int port = 0;
  int listen_fd = -1, wake_fd = -1;
  std::list<Conn> conns;
  std::thread thread;

  ~Impl() {
    for (auto& c : conns) ::close(c.fd);
    if (listen_fd >= 0) ::close(listen_fd);
    if (wake_fd >= 0) ::close(wake_fd);
  }

  void bind_listener(const std::string& address);
  void loop();
  void accept_all();
  void on_readable(Conn& c);
  void answer(Conn& c, const std::string& head);
  void start_reply(Conn& c, std::string reply, bool close);
  void on_writable(Conn& c);
  void next_request(Conn& c);
};

void MetricsServer::Impl::bind_listener(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw std::invalid_argument("metrics_listen '" + address + "' must be HOST:PORT, e.g. 127.0.0.1:9464");
  host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5 ||
      std::stoi(port_text) > 65535)
    throw std::invalid_argument("metrics_listen '" + address + "': the port must be a number from 0 to 65535");
  std::string node = host;
  if (node.size() > 2 && node.front() == '[' && node.back() == ']') node = node.substr(1, node.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (const int rc = getaddrinfo(node.c_str(), port_text.c_str(), &hints, &res); rc != 0)
    throw std::runtime_error("cannot listen for metrics on " + address + ": " + gai_strerror(rc));
  std::string error = "no address";
  for (addrinfo* ai = res; ai && listen_fd < 0; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 64) == 0) {
      listen_fd = fd;
      sockaddr_storage a{};
      socklen_t len = sizeof a;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
      port = ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&a)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&a)->sin_port);
    } else {
      error = std::strerror(errno);
      ::close(fd);
    }
  }
  freeaddrinfo(res);
  if (listen_fd < 0) throw std::runtime_error("cannot listen for metrics on " + address + ": " + error);
  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) throw std::runtime_error(std::string("metrics listener: eventfd: ") + std::strerror(errno));
}

void MetricsServer::Impl::loop() {
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    fds.push_back({listen_fd, POLLIN, 0});
    auto wait = std::chrono::milliseconds(1000);
    const auto now = Clock::now();
    for (auto& c : conns) {
      fds.push_back({c.fd, static_cast<short>(c.state == Conn::State::writing ? POLLOUT : POLLIN), 0});
      wait = std::min(wait, std::max(std::chrono::milliseconds(0),
                                     std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now) +
                                         std::chrono::milliseconds(1)));
    }
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait.count())) < 0 && errno != EINTR) {
      spdlog::error("metrics listener: poll failed: {}; /metrics is off from now on", std::strerror(errno));
      return;
    }
    if (fds[0].revents) return;  // stop
    size_t i = 2;
    for (auto it = conns.begin(); it != conns.end(); ++i) {
      Conn& c = *it;
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        c.state == Conn::State::writing ? on_writable(c) : on_readable(c);
      } else if (fds[i].revents & POLLOUT) {
        on_writable(c);
      }
      if (c.fd >= 0 && Clock::now() >= c.deadline && c.state == Conn::State::reading && c.request_started) {
        start_reply(c, http_reply(408, "the request head did not arrive in time\n", false, true), true);
      } else if (c.fd >= 0 && Clock::now() >= c.deadline) {
        ::close(c.fd);  // idle keep-alive, a reply not taken, or draining done
        c.fd = -1;
      }
      it = c.fd < 0 ? conns.erase(it) : std::next(it);
    }
    if (fds[1].revents & POLLIN) accept_all();
  }
}

void MetricsServer::Impl::accept_all() {
  for (int accepted = 0; accepted < 64; ++accepted) {  // then back to poll: a connect flood cannot hold the thread
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection that went away; the next poll tries again
    if (conns.size() >= opt.max_connections) {
      const std::string r = http_reply(503, "too many metrics connections\n", false, true);
      (void)::send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      continue;
    }
    Conn c;
    c.fd = fd;
    c.deadline = Clock::now() + opt.head_timeout;  // a new connection is there to send a request
    conns.push_back(std::move(c));
  }
}

void MetricsServer::Impl::on_readable(Conn& c) {
  char buf[4096];
  for (int reads = 0; reads < 64; ++reads) {  // then back to poll: a fast sender cannot hold the thread
    const size_t room = c.state == Conn::State::draining ? sizeof buf
                                                         : std::min(sizeof buf, opt.max_head_bytes + 4 - c.in.size());
    const ssize_t n = room == 0 ? 0 : ::recv(c.fd, buf, room, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0 && room != 0) {  // closed by the client, or reset
      ::close(c.fd);
      c.fd = -1;
      return;
    }
    if (c.state == Conn::State::draining) continue;  // discarded, never stored
    if (!c.request_started) {
      c.request_started = true;
      c.deadline = Clock::now() + opt.head_timeout;
    }
    c.in.append(buf, static_cast<size_t>(n));
    const size_t end = c.in.find("\r\n\r\n");
    if (end != std::string::npos && end <= opt.max_head_bytes) {
      const std::string head = c.in.substr(0, end);
      c.in.erase(0, end + 4);  // a pipelined next request stays
      return answer(c, head);
    }
    if (c.in.size() >= opt.max_head_bytes + 4)
      return start_reply(c,
                         http_reply(431, "the request head is longer than " + std::to_string(opt.max_head_bytes) +
                                             " bytes\n", false, true),
                         true);
  }
}

void MetricsServer::Impl::answer(Conn& c, const std::string& head) {
  Request r;
  std::string why;
  const int status = parse_head(head, opt.max_headers, r, why);
  const bool head_only = r.method == "HEAD";
  if (status != 0) return start_reply(c, http_reply(status, why + "\n", head_only, true), true);
  if (r.has_body)
    return start_reply(c, http_reply(413, "/metrics takes no request body\n", head_only, true), true);
  if (r.method != "GET" && r.method != "HEAD")
    return start_reply(c, http_reply(405, "GET or HEAD only\n", false, true, "Allow: GET, HEAD\r\n"), true);
  if (!opt.bearer_token.empty() && !token_matches(r.authorization, opt.bearer_token))
    return start_reply(c,
                       http_reply(401, "a bearer token is required\n", head_only, true,
                                  "WWW-Authenticate: Bearer realm=\"duet-metrics\"\r\n"),
                       true);
  if (r.path != "/metrics") return start_reply(c, http_reply(404, "only /metrics is here\n", head_only, true), true);
  std::string page;
  try {
    page = render();
  } catch (const std::exception& e) {
    return start_reply(c, http_reply(500, std::string("the metrics could not be rendered: ") + e.what() + "\n",
                                     head_only, true), true);
  }
  start_reply(c, http_reply(200, page, head_only, !r.keep_alive, {}, "text/plain; version=0.0.4"), !r.keep_alive);
}

void MetricsServer::Impl::start_reply(Conn& c, std::string reply, bool close) {
  c.out = std::move(reply);
  c.sent = 0;
  c.close_after = close;
  c.state = Conn::State::writing;
  c.deadline = Clock::now() + opt.write_timeout;
  on_writable(c);
}

void MetricsServer::Impl::on_writable(Conn& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      ::close(c.fd);
      c.fd = -1;
      return;
    }
    c.sent += static_cast<size_t>(n);
  }
  c.out.clear();
  c.out.shrink_to_fit();
  next_request(c);
}

// After a reply: an error closes the connection (what the client still sends is discarded for
// drain_time, so that it can read the reply instead of meeting a reset); a kept-alive one waits
// for the next request, which may already be here (pipelined).
void MetricsServer::Impl::next_request(Conn& c) {
  if (c.close_after) {
    ::shutdown(c.fd, SHUT_WR);
    c.in.clear();
    c.in.shrink_to_fit();
    c.state = Conn::State::draining;
    c.deadline = Clock::now() + opt.drain_time;
    return;
  }
  c.state = Conn::State::reading;
  c.request_started = !c.in.empty();
  c.deadline = Clock::now() + (c.request_started ? opt.head_timeout : opt.idle_timeout);
  const size_t end = c.in.find("\r\n\r\n");
  if (end != std::string::npos && end <= opt.max_head_bytes) {
    const std::string head = c.in.substr(0, end);
    c.in.erase(0, end + 4);
    answer(c, head);
  }
}

MetricsServer::MetricsServer(MetricsHttpOptions options, std::function<std::string()> render)
    : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->render = std::move(render);
  impl_->bind_listener(impl_->opt.address);
  impl_->thread = std::thread([this] { impl_->loop(); });
}

MetricsServer::~MetricsServer() {
  const uint64_t one = 1;
  (void)!::write(impl_->wake_fd, &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::string MetricsServer::address() const { return impl_->host + ":" + std::to_string(impl_->port); }

std::string read_bearer_token_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::invalid_argument("metrics token file '" + path + "' cannot be read");
  std::string line;
  std::getline(f, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const std::string_view t = trim(line);
  if (t.empty()) throw std::invalid_argument("metrics token file '" + path + "' holds no token on its first line");
  if (t.find_first_of(" \t\r\n") != std::string_view::npos || t.size() > 1024)
    throw std::invalid_argument("metrics token file '" + path + "': the token must be one word of at most 1024 bytes");
  return std::string(t);
}

}  // namespace duet::cloud
