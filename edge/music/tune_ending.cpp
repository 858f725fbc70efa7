#include "edge/music/tune_ending.hpp"

#include <algorithm>

namespace duet::music {

EndingPush ending_push(const TuneEndingOptions& o, int64_t new_tokens, int64_t bars, int64_t new_bars, bool can_end,
                       bool ends_section) {
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
  if (o.long_after_bars > 0 && bars > o.long_after_bars) {
    const double over = static_cast<double>(bars - o.long_after_bars);
    if (!can_end)
      p.steer_bias = std::min(12.0, 1.0 + over);
    else if (ends_section)
      p.end_bias = std::min(12.0, 1.0 + over);
    else if (over > 8)
      p.end_bias = std::min(12.0, 0.5 * (over - 8));
  }
  return p;
}

}  // namespace duet::music
