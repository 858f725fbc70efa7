#pragma once
// The client side of the daemon's /metrics: one HTTP/1.0 GET and reading samples out of the
// Prometheus text, for duet-load's per-run step figures (rows per step, the batching window) and
// the integration tests. Plain sockets, no LibTorch.
#include <optional>
#include <string>

namespace duet::bench {

// GET http://HOST:PORT/PATH (HOST an IPv4 address); the body of a 200 reply, nullopt otherwise
// (no connection, a timeout of 5 s, another status).
std::optional<std::string> http_get(const std::string& host, int port, const std::string& path);

// The value of the sample `name{labels}` (`name` alone when labels is empty); nullopt if absent.
std::optional<double> metric_sample(const std::string& text, const std::string& name, const std::string& labels = "");

}  // namespace duet::bench
