#include "cloud/intake.hpp"

#include <algorithm>

#include "protocol/errors.hpp"

namespace duet::cloud {

using protocol::ErrorCode;
using protocol::ProtocolError;

Ticket& Ticket::operator=(Ticket&& o) noexcept {
  if (this != &o) {
    reset();
    intake_ = o.intake_;
    owner_ = std::move(o.owner_);
    bytes_ = o.bytes_;
    o.intake_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void Ticket::reset() {
  if (intake_ && bytes_ > 0) intake_->give_back(owner_, bytes_);
  intake_ = nullptr;
  bytes_ = 0;
}

void Intake::opened(uint64_t session, const std::string& owner) {
  std::lock_guard<std::mutex> lock(mu_);
  owner_of_[session] = owner;
}

void Intake::closed(uint64_t session) {
  std::lock_guard<std::mutex> lock(mu_);
  owner_of_.erase(session);
}

Ticket Intake::admit(const std::string& owner, uint64_t session, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (session != 0) {
    auto it = owner_of_.find(session);
    if (it == owner_of_.end() || it->second != owner)
      throw ProtocolError(ErrorCode::unknown_session, "session " + std::to_string(session) +
                                                          " is not open for this client (closed, expired after the idle "
                                                          "timeout, or never opened); its forward was not queued");
  }
  uint64_t& mine = per_key_[owner];
  if (mine + bytes > limits_.max_queued_bytes_per_key || total_ + bytes > limits_.max_queued_bytes) {
    const bool key_full = mine + bytes > limits_.max_queued_bytes_per_key;
    const std::string why =
        key_full ? "this client key already has " + std::to_string(mine >> 20) + " MiB of requests queued (at most " +
                       std::to_string(limits_.max_queued_bytes_per_key >> 20) + " MiB per key)"
                 : "the daemon already holds " + std::to_string(total_ >> 20) + " MiB of queued requests (at most " +
                       std::to_string(limits_.max_queued_bytes >> 20) + " MiB)";
    if (mine == 0) per_key_.erase(owner);
    throw ProtocolError(ErrorCode::server_busy, "a request of " + std::to_string(bytes) + " bytes was not queued: " +
                                                    why + "; wait for replies before sending more");
  }
  mine += bytes;
  total_ += bytes;
  return Ticket(this, owner, bytes);
}

void Intake::give_back(const std::string& owner, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_key_.find(owner);
  if (it != per_key_.end()) {
    it->second -= std::min(it->second, bytes);
    if (it->second == 0) per_key_.erase(it);
  }
  total_ -= std::min(total_, bytes);
}

uint64_t Intake::queued_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

uint64_t Intake::queued_bytes(const std::string& owner) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_key_.find(owner);
  return it == per_key_.end() ? 0 : it->second;
}

}  // namespace duet::cloud
