#include "cloud/session_table.hpp"

#include "protocol/errors.hpp"
#include "protocol/validate.hpp"

namespace duet::cloud {

using protocol::ErrorCode;
using protocol::ProtocolError;

SessionTable::SessionTable(Pipeline& pipeline, SessionLimits limits)
    : allocator_(pipeline.allocator()), limits_(limits), ids_(std::random_device{}()) {}

SessionTable::~SessionTable() {
  for (auto& [id, s] : sessions_) allocator_.release(s.table);
}

Session& SessionTable::open(const std::string& owner, uint32_t requested_positions) {
  if (sessions_.size() >= limits_.max_sessions)
    throw ProtocolError(ErrorCode::session_limit, "the daemon already serves its maximum of " +
                                                      std::to_string(limits_.max_sessions) +
                                                      " sessions; close one or try later");
  const uint32_t granted =
      requested_positions == 0 ? limits_.max_positions : std::min(requested_positions, limits_.max_positions);
  Session s;
  do s.id = ids_();  // unguessable, so one client cannot address another's session by luck
  while (s.id == 0 || sessions_.count(s.id));
  s.owner = owner;
  s.max_positions = granted;
  if (!allocator_.ensure(s.table, 1))
    throw ProtocolError(ErrorCode::kv_memory_limit,
                        "the KV cache budget (" + std::to_string(limits_.kv_budget_bytes >> 20) + " MiB, " +
                            std::to_string(allocator_.usable_blocks()) +
                            " blocks) is used up by open sessions; close one or try later");
  s.last_used = Clock::now();
  auto id = s.id;
  return sessions_.emplace(id, std::move(s)).first->second;
}

Session& SessionTable::get(const std::string& owner, uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.owner != owner)
    throw ProtocolError(ErrorCode::unknown_session, "session " + std::to_string(id) +
                                                        " is not open on this connection (closed, expired after " +
                                                        std::to_string(limits_.idle_timeout.count() / 1000) +
                                                        " s idle, or never opened)");
  return it->second;
}

void SessionTable::erase(std::map<uint64_t, Session>::iterator it) {
  allocator_.release(it->second.table);
  sessions_.erase(it);
}

bool SessionTable::close(const std::string& owner, uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.owner != owner) return false;
  erase(it);
  return true;
}

void SessionTable::reserve(Session& s, uint32_t start, uint32_t n) {
  protocol::check_forward_positions(s.length, start, n, s.max_positions);
  const int64_t before = static_cast<int64_t>(s.table.blocks.size());
  if (!allocator_.ensure(s.table, int64_t(start) + n)) {
    const int64_t need = KvBlockAllocator::blocks_for(int64_t(start) + n, allocator_.block_size()) - before;
    throw ProtocolError(ErrorCode::kv_memory_limit,
                        "session " + std::to_string(s.id) + " needs " + std::to_string(need) +
                            " more KV blocks but only " + std::to_string(allocator_.free_blocks()) +
                            " of the daemon's budget of " + std::to_string(limits_.kv_budget_bytes >> 20) +
                            " MiB are free; close sessions");
  }
  s.last_used = Clock::now();
}

void SessionTable::commit(Session& s, uint32_t start, uint32_t n) {
  s.length = start + n;
  s.table.length = s.length;
  allocator_.truncate(s.table, std::max<int64_t>(s.length, 1));  // keep the block open() took
}

void SessionTable::rewind(Session& s, uint32_t start) {
  s.length = std::min(s.length, start);
  s.table.length = s.length;
}

std::vector<uint64_t> SessionTable::expire(Clock::time_point now) {
  std::vector<uint64_t> gone;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (now - it->second.last_used > limits_.idle_timeout) {
      gone.push_back(it->first);
      erase(it);
    }
    it = next;
  }
  return gone;
}

void SessionTable::close_all_of(const std::string& owner) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (it->second.owner == owner) erase(it);
    it = next;
  }
}

}  // namespace duet::cloud
