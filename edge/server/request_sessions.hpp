#pragma once
// Requests served at once, each in a cloud session of its own. The edge model (embedding, norm,
// head, tokenizer) is the one EdgeClient loaded; cloud connections (a DEALER socket each, CURVE
// handshake and hello done once) are pooled: a request takes an idle one or opens one, opens its
// session, and gives the connection back when done. Ending a request early (StopGeneration
// from its token callback) closes its session before run() returns.
// A pooled connection the daemon forgot (its idle timeout, a restart) is greeted again when its
// next session opens (RemoteBackbone); one that timed out is dropped, and the next request opens
// a fresh one.
// With a local client (blocks in process) requests run one at a time on the client's blocks.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "edge/client/edge_client.hpp"
#include "edge/generation/token_runner.hpp"

namespace duet::edge {

class RequestSessions final : public TokenRunner {
 public:
  // max_active: requests generating at once; more wait for a free slot (0: 1).
  RequestSessions(EdgeClient& client, size_t max_active);
  ~RequestSessions();

  // One generation in its own session. Throws what EdgeClient and CloudConnection throw.
  GenerationResult run(const std::vector<int32_t>& prompt, const GenerationOptions& opts,
                       const TokenCallback& on_token) override;

  // Is the daemon there? A hello on a connection kept for the purpose, at most `limit` long;
  // the answer is reused for a second. Always up when local.
  struct CloudHealth {
    bool up = true;
    std::string detail;  // why not
  };
  CloudHealth probe(std::chrono::milliseconds limit);

  size_t active() const;        // generating now
  size_t connections() const;   // opened so far, busy or idle
  size_t max_active() const { return max_active_; }

 private:
  std::unique_ptr<CloudConnection> take_connection();
  void give_back(std::unique_ptr<CloudConnection> conn);

  EdgeClient& client_;
  size_t max_active_;
  mutable std::mutex mu_;
  std::condition_variable slot_free_;
  size_t active_ = 0;
  size_t opened_ = 0;
  std::vector<std::unique_ptr<CloudConnection>> idle_;
  std::mutex probe_mu_;  // one probe at a time; the others read its answer
  std::unique_ptr<CloudConnection> probe_conn_;
  std::chrono::steady_clock::time_point probed_at_{};
  CloudHealth probed_;
  std::mutex local_mu_;  // the client's own (local) backbone: one request at a time
};

}  // namespace duet::edge
