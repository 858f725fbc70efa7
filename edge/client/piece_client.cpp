#include "edge/client/piece_client.hpp"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "common/dtype.hpp"
#include "common/model_config.hpp"
#include "common/wire/tensor_frames.hpp"
#include "edge/client/piece_maker.hpp"

namespace duet::edge {

bool is_notagen_model(const std::string& dir) { return ModelConfig::from_dir(dir).family == Family::notagen; }

PieceClient::PieceClient(const EdgeConfig& cfg, bool local) : cfg_(cfg), local_(local) {
  // the piece loop sends the patch embeddings themselves: a daemon started at --first-block K
  // would take them for block K's input and write garbage
  if (!local && cfg.edge_blocks > 0)
    throw std::invalid_argument("--edge-blocks " + std::to_string(cfg.edge_blocks) +
                                ": NotaGen models keep every block on the daemon (run it without --first-block)");
  if (cfg.model_path.empty()) throw std::invalid_argument("no model: set [model] path or --model");
  const nlohmann::json dj = read_duet_json(cfg.model_path);
  const std::string order = dj.value("sampling_order", std::string("notagen"));
  if (order != "notagen" && order != "hf")
    throw std::invalid_argument(cfg.model_path + "/duet.json: sampling_order must be \"notagen\" or \"hf\"");
  temperature_last_ = order == "notagen";
  max_chars_ = dj.value("max_chars", int64_t{102400});

  ckpt_ = std::make_unique<Checkpoint>(cfg.model_path);
  const LoadOptions lo{parse_dtype(cfg.dtype), parse_device(cfg.device)};
  gen_ = std::make_unique<notagen::PieceGenerator>(*ckpt_, lo);
  link_ = open_blocks(cfg, local, *ckpt_, lo, model_fingerprint(*ckpt_));
}

PieceClient::~PieceClient() {
  link_.backbone.reset();  // closes the session while the connection is alive
  link_.conn.reset();
}

GenerationOptions PieceClient::default_options() const {
  GenerationOptions g;
  g.max_new_tokens = max_chars_;
  g.sampling = cfg_.sampling;
  g.sampling.temperature_last = temperature_last_;
  g.max_positions = link_.max_positions;
  return g;
}

notagen::PieceResult PieceClient::generate(const std::string& prompt_text, const notagen::PieceOptions& opts,
                                           const notagen::TextCallback& on_text) {
  return gen_->generate(*link_.backbone, prompt_text, opts, on_text);
}

}  // namespace duet::edge
