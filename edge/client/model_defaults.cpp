#include "edge/client/model_defaults.hpp"

#include "edge/music/music_options.hpp"

namespace duet::edge {

void apply_model_defaults(EdgeConfig& cfg) {
  const auto music = music::MusicModelSpec::from_model_dir(cfg.model_path);
  if (!music) return;
  if (!cfg.max_new_tokens_set && music->max_new_tokens > 0) cfg.max_new_tokens = music->max_new_tokens;
  if (cfg.sampling_set) return;  // the config file chose its sampling: the model's does not mix in
  const auto& s = music->sampling;
  if (auto it = s.find("temperature"); it != s.end()) cfg.sampling.temperature = it->second;
  if (auto it = s.find("top_k"); it != s.end()) cfg.sampling.top_k = static_cast<int64_t>(it->second);
  if (auto it = s.find("top_p"); it != s.end()) cfg.sampling.top_p = it->second;
}

}  // namespace duet::edge
