#include "cloud/session_table.hpp"

#include <openssl/rand.h>

#include <stdexcept>

#include "protocol/errors.hpp"
#include "protocol/validate.hpp"

namespace duet::cloud {

using protocol::ErrorCode;
using protocol::ProtocolError;

namespace {

// Session ids are capabilities of a sort (with the owner check): unguessable, from the OS's CSPRNG.
uint64_t random_id() {
  uint64_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1)
    throw std::runtime_error("OpenSSL RAND_bytes failed: no session id can be made");
  return id;
}

}  // namespace

SessionTable::SessionTable(const Pipeline& pipeline, SessionLimits limits)
    : pipeline_(pipeline), limits_(limits) {}

int64_t SessionTable::reserved_for(const Session& s, uint32_t positions) const {
  // what the caches hold once they reach `positions` (they grow in chunks)
  return LayerKvCache::capacity_for(std::max<uint32_t>(positions, 1), s.max_positions) *
         pipeline_.kv_bytes_per_position();
}

Session& SessionTable::open(const std::string& owner, uint32_t requested_positions) {
  if (sessions_.size() >= limits_.max_sessions)
    throw ProtocolError(ErrorCode::session_limit, "the daemon already serves its maximum of " +
                                                      std::to_string(limits_.max_sessions) +
                                                      " sessions; close one or try later");
  const uint32_t granted =
      requested_positions == 0 ? limits_.max_positions : std::min(requested_positions, limits_.max_positions);
  Session s;
  do s.id = random_id();
  while (s.id == 0 || sessions_.count(s.id));
  s.owner = owner;
  s.max_positions = granted;
  s.reserved_kv = reserved_for(s, 1);
  if (kv_in_use_ + s.reserved_kv > limits_.kv_budget_bytes)
    throw ProtocolError(ErrorCode::kv_memory_limit,
                        "the KV cache budget (" + std::to_string(limits_.kv_budget_bytes >> 20) +
                            " MiB) is used up by open sessions; close one or try later");
  s.cache = pipeline_.make_cache(granted);
  s.last_used = Clock::now();
  kv_in_use_ += s.reserved_kv;
  auto id = s.id;
  return sessions_.emplace(id, std::move(s)).first->second;
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

bool SessionTable::close(const std::string& owner, uint64_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.owner != owner) return false;
  kv_in_use_ -= it->second.reserved_kv;
  sessions_.erase(it);
  return true;
}

void SessionTable::reserve(Session& s, uint32_t start, uint32_t n) {
  protocol::check_forward_positions(s.length, start, n, s.max_positions);
  const int64_t need = reserved_for(s, start + n);
  if (need > s.reserved_kv) {
    if (kv_in_use_ + need - s.reserved_kv > limits_.kv_budget_bytes)
      throw ProtocolError(ErrorCode::kv_memory_limit,
                          "session " + std::to_string(s.id) + " needs " + std::to_string((need - s.reserved_kv) >> 10) +
                              " KiB more KV cache but the daemon's budget of " +
                              std::to_string(limits_.kv_budget_bytes >> 20) + " MiB is in use; close sessions");
    kv_in_use_ += need - s.reserved_kv;
    s.reserved_kv = need;
  }
  s.last_used = Clock::now();
}

std::vector<uint64_t> SessionTable::expire(Clock::time_point now) {
  std::vector<uint64_t> gone;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second.last_used > limits_.idle_timeout) {
      gone.push_back(it->first);
      kv_in_use_ -= it->second.reserved_kv;
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

void SessionTable::close_all_of(const std::string& owner) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.owner == owner) {
      kv_in_use_ -= it->second.reserved_kv;
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

void SessionTable::close_all() {
  sessions_.clear();
  kv_in_use_ = 0;
}

}  // namespace duet::cloud
