#pragma once
// Where a NotaGen GenerationJob's patches come from, as TokenRunner is for token-level models:
// the CLI's PieceClient (its one cloud session, or its blocks in process), or a test's scripted
// source.
#include <string>

#include "edge/client/piece_client.hpp"

namespace duet::edge {

class PieceRunner {
 public:
  virtual ~PieceRunner() = default;
  // One piece after prompt_text; on_text may throw StopGeneration to end it early. Throws what
  // the backbone throws.
  virtual notagen::PieceResult run(const std::string& prompt_text, const notagen::PieceOptions& opts,
                                   const notagen::TextCallback& on_text) = 0;
};

// The client's own blocks (its one cloud session, or in process).
class ClientPieceRunner final : public PieceRunner {
 public:
  explicit ClientPieceRunner(PieceClient& client) : client_(client) {}
  notagen::PieceResult run(const std::string& prompt_text, const notagen::PieceOptions& opts,
                           const notagen::TextCallback& on_text) override {
    return client_.generate(prompt_text, opts, on_text);
  }

 private:
  PieceClient& client_;
};

}  // namespace duet::edge
