#include "cloud/step_cost.hpp"

#include <algorithm>
#include <cmath>

namespace duet::cloud {

namespace {
// Weight of the newest step: a few dozen steps make the estimate, so a change of load (more
// sessions, longer contexts) moves it within a fraction of a second.
constexpr double kAlpha = 0.1;
double ewma(double old, double now, bool seen) { return seen ? old + kAlpha * (now - old) : now; }
}  // namespace

void StepCost::observe(int64_t decode_rows, int64_t prefill_tokens, double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds)) return;
  if (prefill_tokens == 0) {
    if (decode_rows > 0) decode_s_ = ewma(decode_s_, seconds, decode_s_ > 0);
    return;
  }
  if (prefill_tokens == 1) return;  // a decode row to the step (kSmallPrefill says why)
  // what the prefill added to a decode-only step (once one is known): a step reads every weight
  // whether or not it carries decode rows, so that part is not the prompt's
  const double extra = std::max(seconds - std::min(decode_s_, seconds), 0.0);
  Mean& m = prefill_tokens <= kSmallPrefill ? small_ : large_;
  m.tokens = ewma(m.tokens, double(prefill_tokens), m.seen);
  m.seconds = ewma(m.seconds, extra, m.seen);
  m.seen = true;
  refit();
}

// The line through the two buckets' means: fixed part + slope per position. With one bucket only
// (or a line whose fixed part is under zero) it is counted as 0, all of it a cost per position.
void StepCost::refit() {
  if (small_.seen && large_.seen && large_.tokens > small_.tokens) {
    const double slope = (large_.seconds - small_.seconds) / (large_.tokens - small_.tokens);
    const double fixed = small_.seconds - slope * small_.tokens;
    if (slope > 0 && fixed > 0) {
      token_s_ = slope;
      overhead_s_ = fixed;
      return;
    }
    if (slope <= 0) {  // positions cost nothing measurable next to the fixed part: bound them
      overhead_s_ = small_.seconds;          // by the large cuts' whole cost (no invented cheapness)
      token_s_ = large_.seconds / large_.tokens;
      return;
    }
  }
  const Mean& m = large_.seen ? large_ : small_;
  overhead_s_ = 0;
  token_s_ = m.seconds / m.tokens;
}

int64_t StepCost::prefill_budget(const PrefillBudget& b) const {
  const int64_t floor = std::min(b.floor, b.ceiling);
  const bool latency_cap = b.decodes && b.factor > 1.0;
  if (!(b.max_step_s > 0) && !latency_cap) return b.ceiling;
  if (token_s_ <= 0) return std::min(b.ceiling, std::max(floor, kProbeTokens));
  double cap = double(b.ceiling);
  if (b.max_step_s > 0) cap = std::min(cap, (b.max_step_s - decode_s_ - overhead_s_) / token_s_);
  if (latency_cap && decode_s_ > 0) {
    const double within = ((b.factor - 1.0) * decode_s_ - overhead_s_) / token_s_;
    const double worth = b.amortize_fixed ? std::ceil(overhead_s_ / token_s_) : 0.0;
    cap = std::min(cap, std::max(within, worth));
  }
  if (!std::isfinite(cap) || cap >= double(b.ceiling)) return b.ceiling;
  // one position would teach nothing: while the fixed part is unknown, cut two to learn it
  const int64_t least = small_.seen ? floor : std::min(b.ceiling, std::max<int64_t>(floor, 2));
  return std::max(least, static_cast<int64_t>(cap));
}

}  // namespace duet::cloud
