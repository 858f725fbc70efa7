#pragma once
// The one percentile of duet's reports (duet-edge generate --json, NotaGen's summary line, the
// benchmarks, the isolation test): linear interpolation between the two nearest ranks, as numpy's
// default, so p50 of an even count is the mean of the middle two. Header-only, no LibTorch.
//   percentile({3, 1, 2, 4}, 0.5) == 2.5;  percentile({}, 0.99, -1) == -1
#include <algorithm>
#include <cstddef>
#include <vector>

namespace duet {

// q in [0, 1] (clamped); `if_empty` when there are no values.
inline double percentile(std::vector<double> v, double q, double if_empty = 0) {
  if (v.empty()) return if_empty;
  std::sort(v.begin(), v.end());
  const double idx = std::clamp(q, 0.0, 1.0) * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(idx), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - static_cast<double>(lo));
}

}  // namespace duet
