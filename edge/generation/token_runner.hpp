#pragma once
// Where a GenerationJob's tokens come from: serve's pooled cloud sessions (RequestSessions, one
// session per request), the CLI's own client, or a test's scripted source.
#include <cstdint>
#include <vector>

#include "common/generator.hpp"
#include "edge/client/edge_client.hpp"

namespace duet::edge {

class TokenRunner {
 public:
  virtual ~TokenRunner() = default;
  // One generation; on_token may throw StopGeneration to end it early. Throws what the backbone throws.
  virtual GenerationResult run(const std::vector<int32_t>& prompt, const GenerationOptions& opts,
                               const TokenCallback& on_token) = 0;
};

// The client's own backbone (its one cloud session, or its blocks in process).
class ClientRunner final : public TokenRunner {
 public:
  explicit ClientRunner(EdgeClient& client) : client_(client) {}
  GenerationResult run(const std::vector<int32_t>& prompt, const GenerationOptions& opts,
                       const TokenCallback& on_token) override {
    return client_.generate(prompt, opts, on_token);
  }

 private:
  EdgeClient& client_;
};

}  // namespace duet::edge
