#pragma once
// What the operator sees: Prometheus text format, built from the engine's snapshot and the socket
// thread's counters, served on http://ADDRESS/metrics by cloud/metrics_http.hpp. Off unless
// [server] metrics_listen is set; bind it to an address edges cannot reach. No LibTorch.
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "cloud/connection_guard.hpp"
#include "cloud/engine.hpp"

namespace duet::cloud {

struct NetworkSnapshot {
  uint64_t replies_dropped = 0, peers_dropped = 0, peers = 0;
  uint64_t handoff_out_ns = 0, handoffs_out = 0;
  std::map<std::string, uint64_t> refused;  // by error code, refused by the socket thread
  ConnectionStats connections;
};

// Written by the socket thread, read by the metrics thread.
struct NetworkStats {
  std::atomic<uint64_t> replies_dropped{0}, peers_dropped{0};
  // the hand-back: a reply formed by the engine to the socket thread sending it
  std::atomic<uint64_t> handoff_out_ns{0}, handoffs_out{0};
  void refuse(const std::string& code);
  void set_connections(const ConnectionStats& c, size_t peers);
  NetworkSnapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> refused_;
  ConnectionStats connections_;
  uint64_t peers_ = 0;
};

std::string render_metrics(const EngineStats& engine, const NetworkSnapshot& net);

}  // namespace duet::cloud
