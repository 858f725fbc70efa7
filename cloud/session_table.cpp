#include "cloud/session_table.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

#include "protocol/errors.hpp"
#include "protocol/validate.hpp"

namespace duet::cloud {

using protocol::ErrorCode;
using protocol::ProtocolError;

namespace {

// Session ids name a session on the wire; with the owner check they are not capabilities, but
// unguessable ids keep one client from probing another's by luck.
uint64_t random_id() {
  uint64_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1)
    throw std::runtime_error("OpenSSL RAND_bytes failed: no session id can be made");
  return id;
}

std::string key_name(const std::string& owner) {
  return owner.rfind("key:", 0) == 0 ? owner.substr(4) : std::string();
}

}  // namespace

SessionTable::SessionTable(KvBlockAllocator& allocator, SessionLimits limits)
    : allocator_(allocator), limits_(std::move(limits)) {}

SessionTable::~SessionTable() { close_all(); }

const KeyQuota& SessionTable::quota_of(const std::string& owner) const {
  auto it = limits_.quotas.find(key_name(owner));
  return it != limits_.quotas.end() ? it->second : limits_.default_quota;
}

Session& SessionTable::open(const std::string& owner, uint32_t requested_positions) {
  if (sessions_.size() >= limits_.max_sessions)
    throw ProtocolError(ErrorCode::session_limit, "the daemon already serves its maximum of " +
                                                      std::to_string(limits_.max_sessions) +
                                                      " sessions; close one or try later");
  const KeyQuota& q = quota_of(owner);
  OwnerUsage& u = usage_[owner];
  if (q.max_sessions > 0 && u.sessions >= q.max_sessions)
    throw ProtocolError(ErrorCode::quota_exceeded, "this client key already has its quota of " +
                                                       std::to_string(q.max_sessions) +
                                                       " sessions open; close one of them first");
  if (requested_positions > limits_.max_positions)
    throw ProtocolError(ErrorCode::position_limit,
                        "a session of " + std::to_string(requested_positions) + " positions was asked for; this daemon "
                        "allows at most " + std::to_string(limits_.max_positions) +
                            " per session (hello's limits.max_positions_per_session; 0 asks for that maximum)");
  Session s;
  do s.id = random_id();
  while (s.id == 0 || sessions_.count(s.id));
  s.owner = owner;
  s.max_positions = requested_positions == 0 ? limits_.max_positions : requested_positions;
  s.last_used = Clock::now();
  auto it = sessions_.emplace(s.id, std::move(s)).first;
  ++u.sessions;
  try {
    reserve(it->second, 0, 1);  // a session holds at least one block: a full pool refuses it here
  } catch (...) {
    release(it);
    throw;
  }
  return it->second;
}

Session* SessionTable::find(uint64_t id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

Session& SessionTable::get(const std::string& owner, uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.owner != owner)
    throw ProtocolError(ErrorCode::unknown_session, "session " + std::to_string(id) +
                                                        " is not open for this client (closed, expired after " +
                                                        std::to_string(limits_.idle_timeout.count() / 1000) +
                                                        " s idle, or never opened)");
  return it->second;
}

void SessionTable::release(std::map<uint64_t, Session>::iterator it) {
  OwnerUsage& u = usage_[it->second.owner];
  u.blocks -= static_cast<int64_t>(it->second.kv.blocks.size());
  if (--u.sessions == 0) usage_.erase(it->second.owner);
  allocator_.release(it->second.kv);
  sessions_.erase(it);
}

bool SessionTable::close(const std::string& owner, uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.owner != owner) return false;
  release(it);
  return true;
}

void SessionTable::reserve(Session& s, uint32_t start, uint32_t n) {
  protocol::check_forward_positions(static_cast<uint32_t>(s.kv.length), start, n, s.max_positions);
  const int64_t have = static_cast<int64_t>(s.kv.blocks.size());
  const int64_t need = KvBlockAllocator::blocks_for(int64_t(start) + n, allocator_.block_size()) - have;
  if (need > 0) {
    const KeyQuota& q = quota_of(s.owner);
    OwnerUsage& u = usage_[s.owner];
    const auto cap = static_cast<int64_t>(q.kv_share * double(allocator_.usable_blocks()));
    const std::string asks = "session " + std::to_string(s.id) + " needs " + std::to_string(need) + " more KV blocks (" +
                             std::to_string(int64_t(start) + n) + " positions in blocks of " +
                             std::to_string(allocator_.block_size()) + ")";
    if (q.kv_share < 1.0 && u.blocks + need > cap)
      throw ProtocolError(ErrorCode::quota_exceeded,
                          asks + " but this client key's share of the KV memory (" + std::to_string(int(q.kv_share * 100)) +
                              " %, " + std::to_string(cap) + " blocks, " + std::to_string(u.blocks) +
                              " in use) would be passed; close some of its sessions");
    if (have + need > allocator_.usable_blocks())
      throw ProtocolError(ErrorCode::kv_memory_limit,
                          asks + ", more than the daemon's whole KV pool (" + std::to_string(allocator_.usable_blocks()) +
                              " blocks) holds: use fewer positions, or the operator raises --kv-memory-mb");
    if (!allocator_.ensure(s.kv, int64_t(start) + n))
      throw ProtocolError(ErrorCode::kv_memory_limit,
                          asks + " but only " + std::to_string(allocator_.free_blocks()) + " of the daemon's KV pool's " +
                              std::to_string(allocator_.usable_blocks()) +
                              " blocks are free (the rest hold other sessions); try later or close sessions");
    u.blocks += need;
  }
  s.last_used = Clock::now();
}

void SessionTable::commit(uint64_t id, int64_t length, Clock::time_point now) {
  if (Session* s = find(id)) {
    s->kv.length = length;
    s->last_used = now;
  }
}

void SessionTable::rollback(uint64_t id, int64_t start) {
  if (Session* s = find(id)) s->kv.length = std::min(s->kv.length, start);
}

std::vector<uint64_t> SessionTable::expire(Clock::time_point now, const std::function<bool(uint64_t)>& busy) {
  std::vector<uint64_t> gone;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (now - it->second.last_used > limits_.idle_timeout && !(busy && busy(it->first))) {
      gone.push_back(it->first);
      release(it);
    }
    it = next;
  }
  return gone;
}

std::vector<uint64_t> SessionTable::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, s] : sessions_) out.push_back(id);
  return out;
}

void SessionTable::close_all() {
  while (!sessions_.empty()) release(sessions_.begin());
}

}  // namespace duet::cloud
