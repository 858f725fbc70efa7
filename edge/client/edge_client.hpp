#pragma once
// duet's edge as a library: load the edge pieces (embedding, final norm, head) and the tokenizer
// of a model folder, connect to a daemon (or run every block in process with local = true), and
// generate.
//
//   duet::edge::EdgeConfig cfg = duet::edge::EdgeConfig::from_toml_file("configs/edge.toml");
//   duet::edge::EdgeClient client(cfg, /*local=*/false);
//   auto ids = client.tokenizer()->encode("X:1\n");
//   auto res = client.generate(ids, client.default_options(), [](int32_t id) { /* stream */ });
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/checkpoint.hpp"
#include "common/generator.hpp"
#include "edge/client/cloud_connection.hpp"
#include "edge/client/edge_config.hpp"
#include "tokenizer/tokenizer.hpp"

namespace duet::edge {

class RemoteBackbone;

// Thrown from an on_token callback to end a generation early (the reader went away, a stop
// string was found): generate() and generate_on() then return the tokens generated so far (the
// one just passed to the callback included) with stop_reason = reason. The backbone's session
// stays as it was; a RemoteBackbone closes it when destroyed.
struct StopGeneration {
  std::string reason;
};

// The [cloud] part of a config as connection options; throws when CURVE is on without keys.
ConnectionOptions connection_options(const EdgeConfig& cfg);

// Where a generation's blocks run: every block in this process (local), or on the daemon the
// config names, greeted with the model's fingerprint. EdgeClient and NotaGen's piece loop both
// open theirs here. Members in this order: the backbone (its session) goes before the connection.
struct BlocksLink {
  std::unique_ptr<CloudConnection> conn;  // null when local
  std::unique_ptr<Backbone> backbone;
  int64_t max_positions = 0;              // per session: the model's (local) or the daemon's limit
};
BlocksLink open_blocks(const EdgeConfig& cfg, bool local, const Checkpoint& ckpt, const LoadOptions& lo,
                       const std::string& fingerprint);

class EdgeClient {
 public:
  EdgeClient(const EdgeConfig& cfg, bool local);
  ~EdgeClient();

  GenerationResult generate(const std::vector<int32_t>& prompt, const GenerationOptions& opts,
                            const TokenCallback& on_token = nullptr);
  GenerationOptions default_options() const;  // budget, sampling and EOS ids from the config/model

  // One generation on a backbone the caller owns (e.g. a RemoteBackbone: its own cloud
  // session): the edge pieces and the tokenizer are loaded once and only read here,
  // so several threads may run this at once, each with its own backbone.
  GenerationResult generate_on(Backbone& backbone, const std::vector<int32_t>& prompt, const GenerationOptions& opts,
                               const TokenCallback& on_token = nullptr) const;
  const EdgeConfig& config() const { return cfg_; }

  const Checkpoint& checkpoint() const { return *ckpt_; }
  const std::optional<duet::tokenizer::Tokenizer>& tokenizer() const { return tokenizer_; }
  bool local() const { return local_; }
  const CloudConnection* connection() const { return conn_.get(); }
  const std::string& fingerprint() const { return fingerprint_; }
  int resumes() const;

 private:
  GenerationResult run_on(Backbone& backbone, const std::vector<int32_t>& prompt, const GenerationOptions& opts,
                          const TokenCallback& on_token) const;
  EdgeConfig cfg_;
  bool local_;
  c10::Device device_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::string fingerprint_;
  EdgePieces pieces_;
  std::optional<duet::tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<CloudConnection> conn_;
  std::unique_ptr<Backbone> backbone_;
};

}  // namespace duet::edge
