#include "edge/server/request_sessions.hpp"

#include <torch/types.h>

#include <algorithm>

#include "edge/client/remote_backbone.hpp"

namespace duet::edge {

RequestSessions::RequestSessions(EdgeClient& client, size_t max_active)
    : client_(client), max_active_(max_active ? max_active : 1) {}

RequestSessions::~RequestSessions() = default;

size_t RequestSessions::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

size_t RequestSessions::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return opened_;
}

std::unique_ptr<CloudConnection> RequestSessions::take_connection() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  // a new socket: CURVE handshake and hello with the client's fingerprint (outside the lock)
  auto c = std::make_unique<CloudConnection>(connection_options(client_.config()), client_.fingerprint());
  std::lock_guard<std::mutex> lock(mu_);
  ++opened_;
  return c;
}

RequestSessions::CloudHealth RequestSessions::probe(std::chrono::milliseconds limit) {
  if (client_.local()) return {};
  std::lock_guard<std::mutex> lock(probe_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (probed_at_ != std::chrono::steady_clock::time_point{} && now - probed_at_ < std::chrono::seconds(1))
    return probed_;
  try {
    if (probe_conn_) {
      probe_conn_->hello(limit);
    } else {
      ConnectionOptions o = connection_options(client_.config());
      o.timeout = std::min(o.timeout, limit);
      probe_conn_ = std::make_unique<CloudConnection>(o, client_.fingerprint());
    }
    probed_ = {};
  } catch (const std::exception& e) {
    probe_conn_.reset();  // a fresh socket next time
    probed_ = {false, e.what()};
  }
  probed_at_ = std::chrono::steady_clock::now();
  return probed_;
}

void RequestSessions::give_back(std::unique_ptr<CloudConnection> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(conn));
}

GenerationResult RequestSessions::run(const std::vector<int32_t>& prompt, const GenerationOptions& opts,
                                      const TokenCallback& on_token) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    slot_free_.wait(lock, [&] { return active_ < max_active_; });
    ++active_;
  }
  struct Slot {
    RequestSessions& s;
    ~Slot() {
      {
        std::lock_guard<std::mutex> lock(s.mu_);
        --s.active_;
      }
      s.slot_free_.notify_one();
    }
  } slot{*this};

  if (client_.local()) {
    std::lock_guard<std::mutex> lock(local_mu_);
    return client_.generate(prompt, opts, on_token);
  }
  auto conn = take_connection();
  GenerationResult res;
  try {
    // the session opens on the first forward and closes when the backbone goes, also when the
    // request ended early (StopGeneration) or failed
    RemoteBackbone backbone(*conn, conn->server().limits.max_positions_per_session);
    res = client_.generate_on(backbone, prompt, opts, on_token);
  } catch (const CloudError& e) {
    // a daemon error leaves the socket in step; silence (timeout, lost link) may not: drop it
    if (e.failure() == CloudFailure::daemon_error) give_back(std::move(conn));
    throw;
  } catch (...) {
    give_back(std::move(conn));
    throw;
  }
  give_back(std::move(conn));
  return res;
}

}  // namespace duet::edge
