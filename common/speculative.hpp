#pragma once
// Several tokens per round trip, exactly: the edge drafts k tokens, one forward carries the last
// accepted token and the k drafts, and the edge verifies the k + 1 returned positions.
//
// Verification is speculative sampling (Leviathan et al. 2023, "Fast Inference from Transformers
// via Speculative Decoding"; Chen et al. 2023, "Accelerating LLM Decoding with Speculative
// Sampling"): draft x ~ q is kept with probability min(1, p(x) / q(x)), where p is the sampler's
// final distribution (repetition penalty, temperature, top-k, top-p, the logits processor's mask
// all applied); on rejection the token is drawn from norm(max(0, p - q)) and the round ends; when
// every draft is kept, one more token is drawn from p at the last position. Each emitted token
// is then distributed exactly as the sampler's p. Greedy is the special case where p is a point
// mass: a draft is kept iff it is the argmax, so the tokens equal plain greedy decoding.
//
// Drafts without a model (prompt lookup) are point masses: q(x) = 1 for the proposed x.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/sampler.hpp"

namespace duet {

struct DraftProposal {
  std::vector<int32_t> tokens;          // at most k
  std::vector<TokenDistribution> q;     // q[i] drew tokens[i]; empty: point masses
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  // Up to k tokens that may follow `history` (prompt + every token so far); fewer or none when
  // the drafter has no idea.
  virtual DraftProposal propose(const std::vector<int32_t>& history, int k) = 0;
  virtual std::string name() const = 0;
};

// Prompt lookup (n-gram drafting over the sequence's own text): finds the most recent earlier
// occurrence of the longest suffix of the history (max_ngram tokens down to min_ngram) and
// proposes what followed it. Character-level ABC repeats whole bars, so long matches pay.
class NgramDrafter final : public Drafter {
 public:
  explicit NgramDrafter(int max_ngram = 16, int min_ngram = 2);
  DraftProposal propose(const std::vector<int32_t>& history, int k) override;
  std::string name() const override { return "ngram"; }

 private:
  int max_ngram_, min_ngram_;
};

// One position's verdict.
struct Verdict {
  bool accepted = false;  // the draft was kept (token == draft)
  int32_t token = -1;     // the emitted token: the draft, or the draw from the residual
};

// Verifies `draft` (drawn from q; nullptr: a point mass at draft) against the target p with the
// sampler's generator. Uses no randomness when the outcome is certain (p a point mass, or
// p(draft) >= q(draft)).
Verdict verify_draft(const TokenDistribution& p, int32_t draft, const TokenDistribution* q, Sampler& sampler);

// norm(max(0, p - q)): what a rejected position draws from. Falls back to p when the difference
// has no mass (possible only by rounding).
TokenDistribution residual(const TokenDistribution& p, const TokenDistribution& q);

// How many tokens to draft next: the k in [0, k_max] that maximises the expected tokens per
// unit of time, E[tokens](k) / (fixed + per_position * (k + 1)), with
//   E[tokens](k) = 1 + sum_{j=1..k} c_1 * ... * c_j
// where c_j is the rate at which the j-th draft is kept once the ones before it were: counted
// per depth, because prompt-lookup drafts are bursty (inside a repeated bar nearly all are kept,
// elsewhere the first fails), which one acceptance rate alpha, E = (1 - alpha^(k+1)) / (1 - alpha),
// would average away. c_j, fixed (the round trip beyond the compute, plus the compute's
// intercept) and per_position (edge + daemon compute per position sent) are running estimates
// of the rounds so far; a long round trip makes long drafts worth it even at low c_j. While
// k = 0 wins, every 8th round still drafts one token so that the estimates can recover.
class DraftLength {
 public:
  DraftLength(int k_max, bool adaptive);
  int next();
  // A round: drafts proposed and kept, the round trip, and the compute it took (ms), positions sent.
  void observe(int proposed, int accepted, double round_trip_ms, double compute_ms, int64_t positions);
  double acceptance() const;  // the current estimate of c_1: how often a round's first draft is kept
  double expected(int k) const;  // E[tokens](k) from the current estimates
  // E[tokens] when every draft is kept with the same alpha (the textbook case)
  static double expected_tokens(double alpha, int k);

 private:
  double keep_rate(int depth) const;  // c_depth, 1-based
  int k_max_;
  bool adaptive_;
  std::vector<double> tried_, kept_;  // per depth: decayed counts of drafts verified and kept
  // decayed least squares of compute_ms = fixed + per_position * positions, and the link's share
  double w_ = 0, sx_ = 0, sy_ = 0, sxx_ = 0, sxy_ = 0, link_ms_ = 0;
  int rounds_ = 0, rounds_since_probe_ = 0;
};

struct SpeculationOptions {
  std::shared_ptr<Drafter> drafter;  // null: no speculation (one token per round trip)
  int k_max = 16;                    // at most this many drafts per round
  bool adaptive = true;              // false: always ask for k_max
};

}  // namespace duet
