#include "cloud/step_cost.hpp"

#include <algorithm>
#include <cmath>

namespace duet::cloud {

namespace {
// Weight of the newest step: a few dozen steps make the estimate, so a change of load (more
// sessions, longer contexts) moves it within a fraction of a second.
constexpr double kAlpha = 0.1;
double ewma(double old, double now) { return old == 0 ? now : old + kAlpha * (now - old); }
}  // namespace

void StepCost::observe(int64_t decode_rows, int64_t prefill_tokens, double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds)) return;
  if (prefill_tokens == 0) {
    if (decode_rows > 0) decode_s_ = ewma(decode_s_, seconds);
    return;
  }
  // the decode rows' share of a mixed step: a decode-only step's time when known
  const double decode_part = decode_rows > 0 ? std::min(decode_s_, seconds) : 0.0;
  token_s_ = ewma(token_s_, std::max(seconds - decode_part, 0.0) / double(prefill_tokens));
}

int64_t StepCost::prefill_budget(const PrefillBudget& b) const {
  const int64_t floor = std::min(b.floor, b.ceiling);
  const bool latency_cap = b.decodes && b.factor > 1.0;
  if (!(b.max_step_s > 0) && !latency_cap) return b.ceiling;
  if (token_s_ <= 0) return std::min(b.ceiling, std::max(floor, kProbeTokens));
  double cap = double(b.ceiling);
  const double decode_part = b.decodes ? decode_s_ : 0.0;
  if (b.max_step_s > 0) cap = std::min(cap, (b.max_step_s - decode_part) / token_s_);
  if (latency_cap && decode_s_ > 0) cap = std::min(cap, (b.factor - 1.0) * decode_s_ / token_s_);
  if (!std::isfinite(cap) || cap >= double(b.ceiling)) return b.ceiling;
  return std::max(floor, static_cast<int64_t>(cap));
}

}  // namespace duet::cloud
