#pragma once
// Sessions: one per sequence an edge runs through the daemon, each with a BlockTable into the
// pipeline's KV pools, owned by the connection that opened it. The table enforces the session
// count, per-session positions and the KV budget (blocks of the pipeline's allocator, sized from
// kv_memory_mb), and expires idle sessions; closing, expiring or dropping a session returns its
// blocks. Kept free of the socket loop: a scheduler batches the rows of several sessions.
//
// Not thread-safe: the thread that runs steps owns it (it shares the allocator with forward).
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cloud/pipeline.hpp"

namespace duet::cloud {

using Clock = std::chrono::steady_clock;

struct Session {
  uint64_t id = 0;
  std::string owner;         // routing id of the connection that opened it
  uint32_t max_positions = 0;
  uint32_t length = 0;       // positions in the cache (== table.length)
  BlockTable table;          // its KV blocks, valid on every stage
  Clock::time_point last_used;
};

struct SessionLimits {
  uint32_t max_sessions = 64;
  uint32_t max_positions = 4096;
  int64_t kv_budget_bytes = int64_t(4) << 30;  // the pipeline's pool is sized from it; quoted in errors
  std::chrono::milliseconds idle_timeout{300000};
};

class SessionTable {
 public:
  SessionTable(Pipeline& pipeline, SessionLimits limits);
  ~SessionTable();  // returns every session's blocks

  // Takes one KV block for the session (a full pool refuses new sessions, not their first step).
  // Throws protocol::ProtocolError (session_limit, kv_memory_limit) with a sentence.
  Session& open(const std::string& owner, uint32_t requested_positions);
  // The owner's session or ProtocolError(unknown_session): another connection's id is unknown too.
  Session& get(const std::string& owner, uint64_t id);
  bool close(const std::string& owner, uint64_t id);
  // Checks and allocates what a forward of n positions at start needs (position_gap,
  // position_limit, kv_memory_limit); call before running it. All or nothing: a refused
  // request leaves the session as it was.
  void reserve(Session& s, uint32_t start, uint32_t n);
  // After a successful forward of [start, start+n): the session now holds start+n positions
  // (blocks past them, left by a rewind, are returned).
  void commit(Session& s, uint32_t start, uint32_t n);
  // After a failed forward: positions from `start` on may hold garbage, so the session keeps
  // [0, min(length, start)) and may replay the rest.
  void rewind(Session& s, uint32_t start);
  // Closes sessions idle longer than the timeout; returns their ids.
  std::vector<uint64_t> expire(Clock::time_point now);
  void close_all_of(const std::string& owner);

  size_t size() const { return sessions_.size(); }
  int64_t kv_blocks_used() const { return allocator_.used_blocks(); }
  int64_t kv_blocks_free() const { return allocator_.free_blocks(); }
  const SessionLimits& limits() const { return limits_; }

 private:
  void erase(std::map<uint64_t, Session>::iterator it);
  KvBlockAllocator& allocator_;
  SessionLimits limits_;
  std::map<uint64_t, Session> sessions_;
  std::mt19937_64 ids_;
};

}  // namespace duet::cloud
