#include "edge/client/edge_client.hpp"

#include <torch/torch.h>

#include <filesystem>

#include "common/dtype.hpp"
#include "common/wire/tensor_frames.hpp"
#include "edge/client/remote_backbone.hpp"
#include "protocol/dtype.hpp"

namespace duet::edge {

ConnectionOptions connection_options(const EdgeConfig& cfg) {
  ConnectionOptions co;
  co.endpoint = cfg.server;
  co.insecure = cfg.insecure;
  co.client_secret_key = cfg.client_key;
  co.server_public_key = cfg.server_key;
  co.wire_dtype = protocol::parse_dtype_or_throw(cfg.wire_dtype);
  co.timeout = std::chrono::milliseconds(cfg.timeout_ms);
  co.spin = std::chrono::microseconds(cfg.spin_us);
  co.edge_blocks = static_cast<uint32_t>(cfg.edge_blocks);
  if (!cfg.insecure && (cfg.client_key.empty() || cfg.server_key.empty()))
    throw std::invalid_argument("CURVE is on: set [cloud] server_key and client_key (or --server-key/--client-key), "
                                "or pass --insecure if the daemon runs without encryption");
  return co;
}

BlocksLink open_blocks(const EdgeConfig& cfg, bool local, const Checkpoint& ckpt, const LoadOptions& lo,
                       const std::string& fingerprint) {
  BlocksLink link;
  if (local) {
    link.max_positions = ckpt.config().max_positions;
    link.backbone = std::make_unique<LocalBackbone>(ckpt, lo, link.max_positions);
    return link;
  }
  link.conn = std::make_unique<CloudConnection>(connection_options(cfg), fingerprint);
  link.max_positions = link.conn->server().limits.max_positions_per_session;
  link.backbone = std::make_unique<RemoteBackbone>(*link.conn, static_cast<uint32_t>(link.max_positions));
  return link;
}

EdgeClient::EdgeClient(const EdgeConfig& cfg, bool local)
    : cfg_(cfg), local_(local), device_(parse_device(cfg.device)) {
  check_draft_settings(cfg.draft, cfg.draft_k);
  if (cfg.model_path.empty()) throw std::invalid_argument("no model: set [model] path or --model");
  ckpt_ = std::make_unique<Checkpoint>(cfg.model_path);
  fingerprint_ = model_fingerprint(*ckpt_);
  LoadOptions o{parse_dtype(cfg.dtype), device_};
  pieces_ = EdgePieces::load(*ckpt_, o);
  const std::string tok = cfg.model_path + "/tokenizer.json";
  if (std::filesystem::exists(tok)) tokenizer_ = duet::tokenizer::Tokenizer::from_file(tok);
  if (!local && (cfg.edge_blocks < 0 || cfg.edge_blocks >= ckpt_->config().num_layers))
    throw std::invalid_argument("--edge-blocks " + std::to_string(cfg.edge_blocks) + " is out of range: the model has " +
                                std::to_string(ckpt_->config().num_layers) +
                                " blocks and the daemon must run at least one");
  auto link = open_blocks(cfg, local, *ckpt_, o, fingerprint_);
  conn_ = std::move(link.conn);
  backbone_ = std::move(link.backbone);
}

EdgeClient::~EdgeClient() {
  backbone_.reset();  // closes the session while the connection is alive
  conn_.reset();
}

int EdgeClient::resumes() const {
  auto* r = dynamic_cast<const RemoteBackbone*>(backbone_.get());
  return r ? r->resumes() : 0;
}

GenerationOptions EdgeClient::default_options() const {
  GenerationOptions g;
  g.max_new_tokens = cfg_.max_new_tokens;
  g.sampling = cfg_.sampling;
  g.stop_ids = ckpt_->config().eos_token_ids;
  if (g.stop_ids.empty() && tokenizer_ && tokenizer_->eos_id()) g.stop_ids.push_back(*tokenizer_->eos_id());
  g.max_positions = ckpt_->config().max_positions;
  if (conn_) g.max_positions = std::min<int64_t>(g.max_positions, conn_->server().limits.max_positions_per_session);
  // suffixes of 16 tokens down to 1: one-token matches still pay on character-level ABC
  // (measured: docs/SPECULATION.md)
  if (cfg_.draft == "ngram") g.speculation.drafter = std::make_shared<NgramDrafter>(16, 1);
  g.speculation.k_max = static_cast<int>(cfg_.draft_k);
  g.speculation.adaptive = cfg_.draft_adaptive;
  return g;
}

GenerationResult EdgeClient::generate(const std::vector<int32_t>& prompt, const GenerationOptions& opts,
                                      const TokenCallback& on_token) {
  return generate_on(*backbone_, prompt, opts, on_token);
}

GenerationResult EdgeClient::generate_on(Backbone& backbone, const std::vector<int32_t>& prompt,
                                         const GenerationOptions& opts, const TokenCallback& on_token) const {
  for (int32_t id : prompt)
    if (id < 0 || id >= ckpt_->config().vocab_size)
      throw std::invalid_argument("prompt token id " + std::to_string(id) + " is outside the vocabulary (0-" +
                                  std::to_string(ckpt_->config().vocab_size - 1) + ")");
  if (!local_ && cfg_.edge_blocks > 0) {
    // --edge-blocks: the first blocks run here, on their own KV, before the daemon's
    LocalBackbone front(*ckpt_, LoadOptions{parse_dtype(cfg_.dtype), device_}, ckpt_->config().max_positions, 0,
                        cfg_.edge_blocks);
    ChainedBackbone chain(front, backbone);
    return run_on(chain, prompt, opts, on_token);
  }
  return run_on(backbone, prompt, opts, on_token);
}

GenerationResult EdgeClient::run_on(Backbone& backbone, const std::vector<int32_t>& prompt,
                                    const GenerationOptions& opts, const TokenCallback& on_token) const {
  if (!on_token) return duet::generate(pieces_, backbone, prompt, opts, device_);
  // the loop's own result is lost when the callback stops it: keep the tokens here too
  std::vector<int32_t> seen;
  try {
    return duet::generate(pieces_, backbone, prompt, opts, device_, [&](int32_t id) {
      seen.push_back(id);
      on_token(id);
    });
  } catch (const StopGeneration& stop) {
    GenerationResult r;
    r.tokens = std::move(seen);
    r.stop_reason = stop.reason;
    return r;
  }
}

}  // namespace duet::edge
