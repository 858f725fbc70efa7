#pragma once
// The daemon's /metrics listener: a small HTTP/1.1 server of its own (one thread, poll(2), no
// library), because it must stay small and stop at once whatever a client sends. It answers
// GET and HEAD /metrics and nothing else, and bounds everything a client can make it hold:
//   - at most max_connections at once (more are answered 503 and closed at accept);
//   - a request head (request line + headers) of at most max_head_bytes and max_headers lines,
//     complete within head_timeout of its first byte (slow trickling is cut off, not waited on);
//   - no request body at all: Content-Length other than 0 or any Transfer-Encoding gets 413
//     before a byte of the body is read; what follows is discarded, never stored;
//   - a keep-alive connection idle longer than idle_timeout, or one that does not read its
//     reply within write_timeout, is closed;
//   - with a bearer token set, a request without `Authorization: Bearer TOKEN` gets 401.
// Memory: at most max_connections × (max_head_bytes + 4 KiB read buffer + one rendered page).
// The destructor closes every connection and returns at once, in any of these states.
// No LibTorch here.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace duet::cloud {

struct MetricsHttpOptions {
  std::string address;       // HOST:PORT ([v6]:PORT); port 0: any free one
  std::string bearer_token;  // empty: no Authorization needed
  size_t max_connections = 8;
  size_t max_head_bytes = 8192;
  size_t max_headers = 64;
  std::chrono::milliseconds head_timeout{5000};   // first byte of a request to its blank line
  std::chrono::milliseconds idle_timeout{10000};  // keep-alive: between two requests
  std::chrono::milliseconds write_timeout{5000};  // a reply must be taken within this
  std::chrono::milliseconds drain_time{1000};     // after an error reply, input is discarded this long
                                                  // (so the client can read the reply) before closing
};

class MetricsServer {
 public:
  // Binds at once (throws std::runtime_error naming the address when it cannot) and serves on a
  // thread of its own; render() runs on that thread, once per GET or HEAD.
  MetricsServer(MetricsHttpOptions options, std::function<std::string()> render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  std::string address() const;  // HOST:PORT actually bound

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The token in a token file: its first line, surrounding whitespace removed. Throws naming the
// file when it cannot be read or holds no token.
std::string read_bearer_token_file(const std::string& path);

}  // namespace duet::cloud
