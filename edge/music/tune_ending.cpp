#include "edge/music/tune_ending.hpp"

#include <algorithm>

namespace duet::music {

EndingPush ending_push(const TuneEndingOptions& o, int64_t new_tokens, int64_t bars, int64_t new_bars, bool can_end,
                       bool ends_section, bool last_tonic) {
  EndingPush p;
  if (o.budget_tokens > 0) {
    // tokens per bar so far (a bar of 6/8 in L:1/8 takes ~10 characters)
    const int64_t per_bar = new_bars > 0 ? (new_tokens + new_bars - 1) / new_bars : 16;
    const int64_t reserve = std::max<int64_t>(12, 3 * per_bar);
    if (o.budget_tokens - new_tokens <= reserve) {
      p.end_only = can_end;
      p.ending = !can_end;
      return p;
    }
  }
  if (o.long_after_bars <= 0) return p;
  const int64_t start = o.start_bars > 0 ? std::min(o.start_bars, o.long_after_bars) : o.long_after_bars;
  if (bars + 1 >= start) p.cadence_bias = o.cadence_bias;
  const double over = static_cast<double>(bars - o.long_after_bars);  // past the style's p90
  const double past_start = static_cast<double>(bars - start);
  if (!can_end) {
    if (past_start > 0) p.steer_bias = std::min(12.0, 1.0 + past_start);
  } else if (bars < o.min_bars) {
    p.end_bias = o.early_bias;
  } else if (ends_section && last_tonic) {
    if (past_start > 0) p.end_bias = std::min(12.0, 1.0 + past_start);
  } else if (ends_section) {
    p.end_bias = over > 0 ? std::min(12.0, 1.0 + over) : o.off_tonic_bias;
  } else if (over > 8) {
    p.end_bias = std::min(12.0, 0.5 * (over - 8));
  } else if (!last_tonic && over <= 0) {
    p.end_bias = o.off_tonic_bias;
  }
  return p;
}

}  // namespace duet::music
