#pragma once
// Sessions: one per sequence an edge runs through the daemon, owned by the client key that opened
// it (not the connection: a routing id is chosen by the client, a key is proven by CURVE). A
// session's KV is a BlockTable into the daemon's paged KV pool (common/kv_blocks.hpp). The table
// enforces the session count, per-session positions, the KV pool and each key's quota, and
// expires idle sessions. No LibTorch: the engine thread owns it and the allocator.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/kv_blocks.hpp"

namespace duet::cloud {

using Clock = std::chrono::steady_clock;

struct Session {
  uint64_t id = 0;
  std::string owner;  // "key:NAME" (the ZAP User-Id), or "connection:ROUTING-ID" when insecure
  uint32_t max_positions = 0;
  BlockTable kv;      // kv.length: positions that hold the sequence
  Clock::time_point last_used;
};

// What one client key may hold. 0 / 1.0: no limit beyond the daemon's.
struct KeyQuota {
  uint32_t max_sessions = 0;
  double kv_share = 1.0;  // of the KV pool's blocks
};

struct SessionLimits {
  uint32_t max_sessions = 64;
  uint32_t max_positions = 4096;
  std::chrono::milliseconds idle_timeout{300000};
  KeyQuota default_quota;
  std::map<std::string, KeyQuota> quotas;  // by key name (allow-list NAME.key)
};

struct OwnerUsage {
  uint32_t sessions = 0;
  int64_t blocks = 0;
};

class SessionTable {
 public:
  SessionTable(KvBlockAllocator& allocator, SessionLimits limits);
  ~SessionTable();

  // Throws protocol::ProtocolError (session_limit, quota_exceeded, kv_memory_limit) with a sentence.
  Session& open(const std::string& owner, uint32_t requested_positions);
  // The owner's session or ProtocolError(unknown_session): another owner's id is unknown too.
  Session& get(const std::string& owner, uint64_t id);
  Session* find(uint64_t id);
  bool close(const std::string& owner, uint64_t id);
  // Checks positions (position_gap, position_limit) and gives the session KV blocks for
  // [0, start + n) (kv_memory_limit, quota_exceeded); call before running the forward.
  void reserve(Session& s, uint32_t start, uint32_t n);
  // The one place a session's length changes after a step (the engine applies a step's outcome
  // here): commit — positions [0, length) now hold the sequence; rollback — a failed step left
  // positions from `start` on undefined, the session keeps [0, start). Unknown ids are ignored
  // (the session closed meanwhile).
  void commit(uint64_t id, int64_t length, Clock::time_point now);
  void rollback(uint64_t id, int64_t start);
  // Closes sessions idle longer than the timeout, except those `busy` says are in use; their ids.
  std::vector<uint64_t> expire(Clock::time_point now, const std::function<bool(uint64_t)>& busy = {});
  void close_all();  // at shutdown: every block back to the pool

  size_t size() const { return sessions_.size(); }
  std::vector<uint64_t> ids() const;
  const SessionLimits& limits() const { return limits_; }
  const KvBlockAllocator& allocator() const { return allocator_; }
  const std::map<std::string, OwnerUsage>& usage() const { return usage_; }
  // The quota `owner` is held to (its own, else the default).
  const KeyQuota& quota_of(const std::string& owner) const;

 private:
  void release(std::map<uint64_t, Session>::iterator it);
  KvBlockAllocator& allocator_;
  SessionLimits limits_;
  std::map<uint64_t, Session> sessions_;
  std::map<std::string, OwnerUsage> usage_;
};

}  // namespace duet::cloud
