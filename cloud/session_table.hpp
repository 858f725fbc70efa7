#pragma once
// Sessions: one per sequence an edge runs through the daemon, each with its own KV cache on
// every stage, owned by the client key that opened it (not the connection: a routing id is chosen
// by the client, a key is proven by CURVE). The table enforces the session count,
// per-session positions and the KV memory budget, and expires idle sessions.
//
// Kept free of the socket loop so that a batching scheduler can later take the ready steps of
// several sessions and run them as one batch: a session's state is only its cache and length.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cloud/pipeline.hpp"

namespace duet::cloud {

using Clock = std::chrono::steady_clock;

struct Session {
  uint64_t id = 0;
  std::string owner;         // the authenticated client (ZAP User-Id), or the connection when insecure
  uint32_t max_positions = 0;
  uint32_t length = 0;       // positions in the cache
  int64_t reserved_kv = 0;   // bytes counted against the budget (allocated capacity)
  SequenceCache cache;
  Clock::time_point last_used;
};

struct SessionLimits {
  uint32_t max_sessions = 64;
  uint32_t max_positions = 4096;
  int64_t kv_budget_bytes = int64_t(4) << 30;
  std::chrono::milliseconds idle_timeout{300000};
};

class SessionTable {
 public:
  SessionTable(const Pipeline& pipeline, SessionLimits limits);

  // Throws protocol::ProtocolError (session_limit, kv_memory_limit) with a sentence.
  Session& open(const std::string& owner, uint32_t requested_positions);
  // The owner's session or ProtocolError(unknown_session): another owner's id is unknown too.
  Session& get(const std::string& owner, uint64_t id);
  bool close(const std::string& owner, uint64_t id);
  // Checks and reserves what a forward of n positions at start needs (position_gap,
  // position_limit, kv_memory_limit); call before running it.
  void reserve(Session& s, uint32_t start, uint32_t n);
  // Closes sessions idle longer than the timeout; returns their ids.
  std::vector<uint64_t> expire(Clock::time_point now);
  void close_all_of(const std::string& owner);
  void close_all();  // at shutdown: every session's memory back

  size_t size() const { return sessions_.size(); }
  int64_t kv_in_use() const { return kv_in_use_; }
  const SessionLimits& limits() const { return limits_; }

 private:
  int64_t reserved_for(const Session& s, uint32_t positions) const;
  const Pipeline& pipeline_;
  SessionLimits limits_;
  std::map<uint64_t, Session> sessions_;
  int64_t kv_in_use_ = 0;
};

}  // namespace duet::cloud
