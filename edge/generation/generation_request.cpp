#include "edge/generation/generation_request.hpp"

#include <random>

namespace duet::edge {

namespace {

bool same_sampling(const SamplingOptions& a, const SamplingOptions& b) {
  return a.temperature == b.temperature && a.top_k == b.top_k && a.top_p == b.top_p &&
         a.repetition_penalty == b.repetition_penalty && a.seed == b.seed && a.temperature_last == b.temperature_last;
}

bool same_options(const music::MusicRequest& x, const music::MusicRequest& y) {
  return x.style == y.style && x.meter == y.meter && x.unit == y.unit && x.key == y.key;
}

}  // namespace

bool operator==(const TuneRequest& a, const TuneRequest& b) {
  return same_options(a.options, b.options) && a.title == b.title && a.tempo_bpm == b.tempo_bpm &&
         a.opening == b.opening && a.constrain == b.constrain && a.max_identical_bars == b.max_identical_bars &&
         a.ending_push == b.ending_push;
}

bool operator==(const PieceRequest& a, const PieceRequest& b) {
  return a.prompt == b.prompt && a.period == b.period && a.composer == b.composer &&
         a.instrumentation == b.instrumentation && same_options(a.folk, b.folk) &&
         a.continue_path == b.continue_path && a.title == b.title && a.tempo_bpm == b.tempo_bpm &&
         a.max_patches == b.max_patches && a.context == b.context && a.full_patches == b.full_patches &&
         a.constrain == b.constrain && a.max_identical_bars == b.max_identical_bars;
}

GenerationPlan resolve(const GenerationDefaults& d, const GenerationRequest& r) {
  GenerationPlan p;
  p.prompt = r.prompt;
  p.max_new_tokens = r.overrides.max_new_tokens.value_or(d.max_new_tokens);
  p.sampling = d.sampling;
  auto& s = p.sampling;
  const auto& o = r.overrides;
  if (o.temperature) s.temperature = *o.temperature;
  if (o.top_p) s.top_p = *o.top_p;
  if (o.top_k) s.top_k = *o.top_k;
  if (o.repetition_penalty) s.repetition_penalty = *o.repetition_penalty;
  s.seed = o.seed ? *o.seed : std::random_device{}();
  p.stop_ids = d.stop_ids;
  p.stop_ids.insert(p.stop_ids.end(), r.extra_stop_ids.begin(), r.extra_stop_ids.end());
  p.max_positions = d.max_positions;
  p.stop_strings = r.stop_strings;
  p.tune = r.tune;
  p.piece = r.piece;
  return p;
}

bool operator==(const GenerationPlan& a, const GenerationPlan& b) {
  return a.prompt == b.prompt && a.max_new_tokens == b.max_new_tokens && same_sampling(a.sampling, b.sampling) &&
         a.stop_ids == b.stop_ids && a.max_positions == b.max_positions && a.stop_strings == b.stop_strings &&
         a.tune == b.tune && a.piece == b.piece;
}

}  // namespace duet::edge
