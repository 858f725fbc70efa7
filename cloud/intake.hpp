#pragma once
// What the socket thread checks before a session request is queued for the engine, so that no
// peer can make the daemon hold what it will only refuse later (issue 20: 40 forwards of 63.5 MiB
// for unknown sessions, queued during a long step, took the daemon to 2.7 GB):
//   - a forward names a session its key owns (the engine registers sessions here as it opens,
//     closes and expires them);
//   - the request bytes queued and not yet done (waiting in the inbox, behind the session's
//     running forward, or running) stay within a bound per key and in all.
// A Ticket, moved along with the request to the job it becomes, gives its bytes back when it is
// destroyed, on whatever path the request ends. Thread-safe. No LibTorch.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace duet::cloud {

struct IntakeLimits {
  uint64_t max_queued_bytes = uint64_t(1) << 30;          // all keys together
  uint64_t max_queued_bytes_per_key = uint64_t(256) << 20;
};

class Intake;

// Bytes a queued request holds; given back when destroyed. Move-only.
class Ticket {
 public:
  Ticket() = default;
  Ticket(Intake* intake, std::string owner, uint64_t bytes) : intake_(intake), owner_(std::move(owner)), bytes_(bytes) {}
  Ticket(Ticket&& o) noexcept { *this = std::move(o); }
  Ticket& operator=(Ticket&& o) noexcept;
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  ~Ticket() { reset(); }
  void reset();
  uint64_t bytes() const { return bytes_; }

 private:
  Intake* intake_ = nullptr;
  std::string owner_;
  uint64_t bytes_ = 0;
};

class Intake {
 public:
  explicit Intake(IntakeLimits limits) : limits_(limits) {}

  // Engine thread: the session table's changes.
  void opened(uint64_t session, const std::string& owner);
  void closed(uint64_t session);

  // Socket thread, for a forward of `bytes` request bytes to `session`: the session is `owner`'s
  // (else ProtocolError unknown_session, the same sentence the engine gives) and the bytes fit
  // (else ProtocolError server_busy naming the bound). For other requests pass session 0.
  Ticket admit(const std::string& owner, uint64_t session, uint64_t bytes);

  uint64_t queued_bytes() const;
  uint64_t queued_bytes(const std::string& owner) const;
  const IntakeLimits& limits() const { return limits_; }

 private:
  friend class Ticket;
  void give_back(const std::string& owner, uint64_t bytes);
  IntakeLimits limits_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::string> owner_of_;
  std::map<std::string, uint64_t> per_key_;
  uint64_t total_ = 0;
};

}  // namespace duet::cloud
