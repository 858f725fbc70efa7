#include "common/speculative.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace duet {

// ---- prompt lookup ---------------------------------------------------------------------------

NgramDrafter::NgramDrafter(int max_ngram, int min_ngram) : max_ngram_(max_ngram), min_ngram_(min_ngram) {
  if (min_ngram < 1 || max_ngram < min_ngram)
    throw std::invalid_argument("n-gram drafter: need 1 <= min_ngram <= max_ngram (got " + std::to_string(min_ngram) +
                                ", " + std::to_string(max_ngram) + ")");
}

DraftProposal NgramDrafter::propose(const std::vector<int32_t>& history, int k) {
  DraftProposal out;
  const int64_t len = static_cast<int64_t>(history.size());
  if (k <= 0) return out;
  for (int64_t n = std::min<int64_t>(max_ngram_, len - 1); n >= min_ngram_; --n) {
    const int32_t* suffix = history.data() + len - n;
    // the most recent earlier occurrence that some token followed: start i with i + n <= len - 1
    for (int64_t i = len - n - 1; i >= 0; --i) {
      if (!std::equal(suffix, suffix + n, history.data() + i)) continue;
      // what followed it; past the history's end the proposal continues itself (periodic text)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t at = i + n + j;
        out.tokens.push_back(at < len ? history[at] : out.tokens[at - len]);
      }
      return out;
    }
  }
  return out;
}

// ---- verification ------------------------------------------------------------------------------

TokenDistribution residual(const TokenDistribution& p, const TokenDistribution& q) {
  TokenDistribution r;
  double sum = 0;
  for (size_t i = 0; i < p.ids.size(); ++i) {
    const double d = p.probs[i] - q.prob_of(p.ids[i]);
    if (d > 0) {
      r.ids.push_back(p.ids[i]);
      r.probs.push_back(d);
      sum += d;
    }
  }
  if (sum <= 0) return p;
  for (double& v : r.probs) v /= sum;
  return r;
}

Verdict verify_draft(const TokenDistribution& p, int32_t draft, const TokenDistribution* q, Sampler& sampler) {
  const double pd = p.prob_of(draft);
  const double qd = q ? q->prob_of(draft) : 1.0;
  bool keep = false;
  if (pd <= 0) keep = false;                  // p never emits it
  else if (pd >= qd) keep = true;             // min(1, p/q) = 1
  else keep = sampler.uniform() < pd / qd;    // kept with probability p/q
  if (keep) return {true, draft};
  const TokenDistribution point = TokenDistribution::point(draft);
  return {false, sampler.draw(residual(p, q ? *q : point))};
}

// ---- draft length ------------------------------------------------------------------------------

DraftLength::DraftLength(int k_max, bool adaptive)
    : k_max_(std::max(0, k_max)), adaptive_(adaptive), tried_(size_t(k_max_), 0.0), kept_(size_t(k_max_), 0.0) {}

double DraftLength::expected_tokens(double alpha, int k) {
  if (alpha >= 1.0) return k + 1.0;
  return (1.0 - std::pow(alpha, k + 1)) / (1.0 - alpha);
}

double DraftLength::keep_rate(int depth) const {
  // shrunk towards the depth before (towards 1/2 at depth 1) while a depth has few counts
  const double prior = depth <= 1 ? 0.5 : keep_rate(depth - 1);
  const size_t j = size_t(depth - 1);
  return (kept_[j] + 2.0 * prior) / (tried_[j] + 2.0);
}

double DraftLength::acceptance() const { return k_max_ ? keep_rate(1) : 0.0; }

double DraftLength::expected(int k) const {
  double e = 1.0, run = 1.0;
  for (int j = 1; j <= k && j <= k_max_; ++j) e += (run *= keep_rate(j));
  return e;
}

void DraftLength::observe(int proposed, int accepted, double round_trip_ms, double compute_ms, int64_t positions) {
  constexpr double decay = 0.95;  // about the last twenty rounds
  if (proposed > 0) {
    // depth j was verified when the j - 1 drafts before it were kept
    for (size_t j = 0; j < tried_.size(); ++j) tried_[j] *= decay, kept_[j] *= decay;
    for (int j = 1; j <= proposed && j <= accepted + 1 && j <= k_max_; ++j) {
      tried_[size_t(j - 1)] += 1;
      if (accepted >= j) kept_[size_t(j - 1)] += 1;
    }
  }
  const double x = static_cast<double>(positions), y = std::max(0.0, compute_ms);
  w_ = decay * w_ + 1;
  sx_ = decay * sx_ + x;
  sy_ = decay * sy_ + y;
  sxx_ = decay * sxx_ + x * x;
  sxy_ = decay * sxy_ + x * y;
  const double link = std::max(0.0, round_trip_ms - compute_ms);
  link_ms_ = rounds_ ? decay * link_ms_ + (1 - decay) * link : link;
  ++rounds_;
}

int DraftLength::next() {
  if (!adaptive_ || k_max_ == 0 || rounds_ < 2) return k_max_;
  const double mx = sx_ / w_, my = sy_ / w_;
  const double var = sxx_ / w_ - mx * mx;
  // slope of compute over positions; without spread in the positions seen, the mean cost per position
  double per_pos = var > 1e-6 ? (sxy_ / w_ - mx * my) / var : my / std::max(mx, 1.0);
  per_pos = std::clamp(per_pos, 0.0, my / std::max(mx, 1.0));
  const double fixed = std::max(0.0, my - per_pos * mx) + link_ms_;
  int best = 0;
  double best_rate = -1;
  for (int k = 0; k <= k_max_; ++k) {
    const double rate = expected(k) / (fixed + per_pos * (k + 1) + 1e-9);
    if (rate > best_rate * (1 + 1e-9)) best_rate = rate, best = k;
  }
  if (best > 0) {
    rounds_since_probe_ = 0;
    return best;
  }
  if (++rounds_since_probe_ >= 8) {
    rounds_since_probe_ = 0;
    return 1;
  }
  return 0;
}

}  // namespace duet
