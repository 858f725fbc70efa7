#pragma once
// NotaGen's edge as a library, as EdgeClient is for token-level models: load the patch embedding,
// the final norm and the character decoder of a NotaGen folder (notagen::PieceGenerator), reach
// the daemon that runs the patch-level blocks (or run them in process with local = true; the same
// open_blocks as EdgeClient), and write pieces, one round trip per patch.
//
//   duet::edge::PieceClient client(cfg, /*local=*/false);
//   GenerationRequest r; r.piece = PieceRequest{};       // duet.json's default prompt
//   GenerationJob job(client, client.default_options(), r);
//   ClientPieceRunner runner(client);
//   auto out = job.run(runner, sink);
#include <cstdint>
#include <memory>
#include <string>

#include "common/generator.hpp"
#include "edge/client/edge_client.hpp"
#include "edge/notagen/piece_generator.hpp"

namespace duet::edge {

// True when the model's family (common/model_config: config.json's model_type) is NotaGen's,
// whose generation writes a patch per round trip. Throws naming the file when config.json cannot
// be read or names a family duet does not run.
bool is_notagen_model(const std::string& dir);

class PieceClient {
 public:
  // Throws std::invalid_argument for --edge-blocks on a daemon (before contacting it: the patch
  // level's input is the patch embedding, not a block's), CloudError when the daemon is not there.
  PieceClient(const EdgeConfig& cfg, bool local);
  ~PieceClient();

  // What a piece starts from: the budget in characters (duet.json's max_chars; NotaGen's 102,400),
  // cfg's sampling in duet.json's sampling_order, no stop ids (the EOS patch ends a piece), and
  // max_positions: the patches one backbone sequence may hold (the model's, or the daemon's
  // per-session limit), where the long-piece rule cuts.
  GenerationOptions default_options() const;

  // One piece after prompt_text (PieceGenerator::generate on this client's blocks).
  notagen::PieceResult generate(const std::string& prompt_text, const notagen::PieceOptions& opts,
                                const notagen::TextCallback& on_text = nullptr);

  const EdgeConfig& config() const { return cfg_; }
  bool local() const { return local_; }
  int64_t weight_bytes() const { return gen_->weight_bytes(); }  // the edge's

 private:
  EdgeConfig cfg_;
  bool local_;
  int64_t max_chars_ = 102400;
  bool temperature_last_ = true;
  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<notagen::PieceGenerator> gen_;
  BlocksLink link_;
};

}  // namespace duet::edge
