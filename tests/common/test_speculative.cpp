// Speculative decoding (common/speculative.*): prompt-lookup drafts, the verification rule checked
// statistically (and shown to catch a wrong rule), the end-to-end output distribution on a tiny
// model, greedy tokens identical to plain greedy, and the adaptive draft length.
#include "torch_doctest.hpp"

#include <cmath>
#include <map>
#include <random>

#include "common/backbone.hpp"
#include "common/generator.hpp"
#include "common/speculative.hpp"
#include "tests/common/random_drafter.hpp"

using namespace duet;

namespace {

std::string fixture(const std::string& name) { return std::string(DUET_FIXTURES_DIR) + "/models/" + name; }
std::string abc_model() { return std::string(DUET_SOURCE_DIR) + "/models/abc-folk"; }

// Upper 1e-4 quantile of chi-square with df degrees of freedom (Wilson-Hilferty).
double chi2_critical(int df) {
  const double z = 3.719, a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

// Pearson's statistic of counts against probabilities; cells expected < 5 are pooled.
struct ChiSquare {
  double stat = 0;
  int df = 0;
  bool passes() const { return stat < chi2_critical(std::max(df, 1)); }
};
template <class Key>
ChiSquare chi_square(const std::map<Key, double>& want, const std::map<Key, int64_t>& got, int64_t n) {
  ChiSquare c;
  double pooled_e = 0, pooled_o = 0;
  int cells = 0;
  std::map<Key, bool> seen;
  for (const auto& [k, p] : want) {
    const double e = p * n;
    const double o = got.count(k) ? double(got.at(k)) : 0.0;
    seen[k] = true;
    if (e < 5) {
      pooled_e += e, pooled_o += o;
      continue;
    }
    c.stat += (o - e) * (o - e) / e;
    ++cells;
  }
  for (const auto& [k, o] : got)
    if (!seen.count(k)) pooled_o += double(o);  // outcomes of probability 0
  if (pooled_e > 0 || pooled_o > 0) {
    if (pooled_e < 1e-9 && pooled_o > 0) c.stat = INFINITY;  // an impossible outcome happened
    else if (pooled_e > 0) c.stat += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e, ++cells;
  }
  c.df = cells - 1;
  return c;
}

const TokenDistribution kP{{0, 1, 2, 3, 4}, {0.4, 0.25, 0.2, 0.1, 0.05}};
const TokenDistribution kQ{{0, 1, 2, 3, 5}, {0.2, 0.2, 0.2, 0.2, 0.2}};  // 5: outside p's support

SamplingOptions sampling(uint64_t seed) {
  SamplingOptions s;
  s.temperature = 1.0;
  s.seed = seed;
  return s;
}

// Broken rules, to show the test has the power to catch them.
// (a) on rejection, draw again from p instead of the residual
Verdict resample_from_p(const TokenDistribution& p, int32_t draft, const TokenDistribution* q, Sampler& s) {
  const double pd = p.prob_of(draft), qd = q ? q->prob_of(draft) : 1.0;
  if (pd > 0 && (pd >= qd || s.uniform() < pd / qd)) return {true, draft};
  return {false, s.draw(p)};
}
// (b) keep the draft with probability p(x), forgetting q(x)
Verdict ignore_q(const TokenDistribution& p, int32_t draft, const TokenDistribution* q, Sampler& s) {
  const double pd = p.prob_of(draft);
  if (pd > 0 && s.uniform() < pd) return {true, draft};
  return {false, s.draw(residual(p, q ? *q : TokenDistribution::point(draft)))};
}

using Rule = Verdict (*)(const TokenDistribution&, int32_t, const TokenDistribution*, Sampler&);

// n verdicts with drafts from q (nullptr: always the point mass `fixed`), counted by emitted token.
std::map<int32_t, int64_t> run_rule(Rule rule, const TokenDistribution* q, int32_t fixed, int64_t n, uint64_t seed) {
  Sampler s(sampling(seed));
  std::mt19937_64 draft_rng(seed + 1);
  std::map<int32_t, int64_t> counts;
  for (int64_t i = 0; i < n; ++i) {
    int32_t d = fixed;
    if (q) {
      std::discrete_distribution<size_t> pick(q->probs.begin(), q->probs.end());
      d = q->ids[pick(draft_rng)];
    }
    ++counts[rule(kP, d, q, s).token];
  }
  return counts;
}

std::map<int32_t, double> as_map(const TokenDistribution& d) {
  std::map<int32_t, double> m;
  for (size_t i = 0; i < d.ids.size(); ++i) m[d.ids[i]] = d.probs[i];
  return m;
}

}  // namespace

TEST_CASE("prompt lookup proposes what followed the longest earlier match, continuing periodic text") {
  NgramDrafter d(8, 2);
  // "a b c d a b" -> after "a b" came "c d a b ..."
  auto p = d.propose({1, 2, 3, 4, 1, 2}, 6);
  CHECK(p.tokens == std::vector<int32_t>{3, 4, 1, 2, 3, 4});
  CHECK(p.q.empty());
  // the longest suffix wins over a more recent shorter one: "9 1 2" matched at 0, "1 2" more recent at 4
  auto l = d.propose({9, 1, 2, 5, 1, 2, 7, 9, 1, 2}, 2);
  CHECK(l.tokens == std::vector<int32_t>{5, 1});
  CHECK(d.propose({1, 2, 3, 4, 5}, 4).tokens.empty());  // nothing repeats
  CHECK(d.propose({1, 2, 1, 2}, 0).tokens.empty());
  CHECK(d.propose({7}, 3).tokens.empty());
  CHECK_THROWS_AS(NgramDrafter(2, 3), std::invalid_argument);
}

TEST_CASE("the sampler's distribution is what next() draws from, seed for seed") {
  SamplingOptions o;
  o.temperature = 0.8;
  o.top_k = 10;
  o.top_p = 0.9;
  o.repetition_penalty = 1.3;
  o.seed = 5;
  auto logits = torch::randn({40});
  std::vector<int32_t> hist = {1, 2, 3};
  Sampler a(o), b(o);
  for (int i = 0; i < 100; ++i) CHECK(a.next(logits, hist) == b.draw(b.distribution(logits, hist)));
  const auto d = a.distribution(logits, hist);
  double sum = 0;
  for (double p : d.probs) sum += p;
  CHECK(std::abs(sum - 1.0) < 1e-12);
  CHECK(d.ids.size() <= 10);
}

TEST_CASE("verification keeps the target distribution: chi-square over 20000 draws, and wrong rules fail it") {
  const int64_t n = 20000;
  const auto want = as_map(kP);
  SUBCASE("point-mass drafts (prompt lookup)") {
    for (int32_t draft : {0, 2, 4, 9}) {
      CAPTURE(draft);
      auto ok = chi_square(want, run_rule(&verify_draft, nullptr, draft, n, 11 + draft), n);
      MESSAGE("draft " << draft << ": chi2 " << ok.stat << " (df " << ok.df << ", limit " << chi2_critical(ok.df) << ")");
      CHECK(ok.passes());
      if (draft != 9) {  // a draft outside p's support is always rejected: (a) is then right by luck
        auto bad = chi_square(want, run_rule(&resample_from_p, nullptr, draft, n, 11 + draft), n);
        MESSAGE("  resample-from-p rule: chi2 " << bad.stat);
        CHECK_FALSE(bad.passes());
      }
    }
  }
  SUBCASE("drafts drawn from a distribution q (a draft model)") {
    auto ok = chi_square(want, run_rule(&verify_draft, &kQ, -1, n, 3), n);
    MESSAGE("q drafts: chi2 " << ok.stat << " (df " << ok.df << ")");
    CHECK(ok.passes());
    auto bad_a = chi_square(want, run_rule(&resample_from_p, &kQ, -1, n, 3), n);
    auto bad_b = chi_square(want, run_rule(&ignore_q, &kQ, -1, n, 3), n);
    MESSAGE("  resample-from-p: chi2 " << bad_a.stat << "; ignore-q: chi2 " << bad_b.stat);
    CHECK_FALSE(bad_a.passes());
    CHECK_FALSE(bad_b.passes());
  }
  SUBCASE("greedy: a point-mass target keeps the draft iff it is the argmax, without randomness") {
    Sampler s(SamplingOptions{});
    const auto p = TokenDistribution::point(3);
    CHECK(verify_draft(p, 3, nullptr, s).accepted);
    auto v = verify_draft(p, 4, nullptr, s);
    CHECK_FALSE(v.accepted);
    CHECK(v.token == 3);
  }
}

namespace {

// Proposes fixed tokens, or draws them from a fixed q (own generator): exercises acceptance and
// rejection at known rates.
class FixedDrafter final : public Drafter {
 public:
  FixedDrafter(std::vector<int32_t> tokens, const TokenDistribution* q, uint64_t seed)
      : tokens_(std::move(tokens)), q_(q), rng_(seed) {}
  DraftProposal propose(const std::vector<int32_t>&, int k) override {
    DraftProposal p;
    for (int i = 0; i < k && i < int(tokens_.size()); ++i) {
      if (q_) {
        std::discrete_distribution<size_t> pick(q_->probs.begin(), q_->probs.end());
        p.tokens.push_back(q_->ids[pick(rng_)]);
        p.q.push_back(*q_);
      } else {
        p.tokens.push_back(tokens_[size_t(i)]);
      }
    }
    return p;
  }
  std::string name() const override { return "fixed"; }

 private:
  std::vector<int32_t> tokens_;
  const TokenDistribution* q_;
  std::mt19937_64 rng_;
};

using duet::test::RandomDrafter;

// The sampler's target distribution after `prefix` (full recompute, one position at a time).
TokenDistribution target(const EdgePieces& edge, LocalBackbone& bb, const SamplingOptions& s,
                         std::vector<int32_t> history) {
  torch::NoGradGuard ng;
  bb.reset();
  std::vector<int64_t> ids(history.begin(), history.end());
  auto out = bb.forward(edge.embedding->forward(torch::tensor(ids), 0), 0, true);
  return Sampler(s).distribution(edge.logits(out)[0], history);
}

}  // namespace

TEST_CASE("speculative sampling on a tiny model: the joint law of 3 tokens is the model's (chi-square)") {
  // temperature, top-k, top-p and repetition penalty all on: the target is the sampler's final law
  Checkpoint ck(fixture("llama_gqa"));
  LoadOptions o;
  auto edge = EdgePieces::load(ck, o);
  LocalBackbone bb(ck, o, ck.config().max_positions);
  const std::vector<int32_t> prompt = {1, 17, 42, 60, 7};
  SamplingOptions s;
  s.temperature = 0.7;
  s.top_k = 3;
  s.top_p = 0.95;
  s.repetition_penalty = 1.5;
  // the exact joint law of (t1, t2, t3)
  std::map<std::vector<int32_t>, double> want;
  const auto p1 = target(edge, bb, s, prompt);
  for (size_t a = 0; a < p1.ids.size(); ++a) {
    auto h1 = prompt;
    h1.push_back(p1.ids[a]);
    const auto p2 = target(edge, bb, s, h1);
    for (size_t b = 0; b < p2.ids.size(); ++b) {
      auto h2 = h1;
      h2.push_back(p2.ids[b]);
      const auto p3 = target(edge, bb, s, h2);
      for (size_t c = 0; c < p3.ids.size(); ++c)
        want[{p1.ids[a], p2.ids[b], p3.ids[c]}] = p1.probs[a] * p2.probs[b] * p3.probs[c];
    }
  }
  REQUIRE(want.size() >= 8);
  // drafts: the likeliest second token after the likeliest first (often kept), and a q law
  const auto p2_top = target(edge, bb, s, {1, 17, 42, 60, 7, p1.ids[0]});
  const TokenDistribution q{{p2_top.ids[0], p2_top.ids.back(), 3}, {0.5, 0.3, 0.2}};
  const int64_t n = 2500;
  for (const TokenDistribution* qp : {static_cast<const TokenDistribution*>(nullptr), &q}) {
    CAPTURE(qp != nullptr);
    std::map<std::vector<int32_t>, int64_t> got;
    int64_t drafted = 0, accepted = 0;
    for (int64_t i = 0; i < n; ++i) {
      GenerationOptions g;
      g.max_new_tokens = 3;
      g.sampling = s;
      g.sampling.seed = 1000 + uint64_t(i);
      g.speculation.drafter = std::make_shared<FixedDrafter>(std::vector<int32_t>{p2_top.ids[0]}, qp, 77 + uint64_t(i));
      g.speculation.k_max = 2;
      g.speculation.adaptive = false;
      auto r = generate(edge, bb, prompt, g, c10::Device(c10::kCPU));
      REQUIRE(r.tokens.size() == 3);
      ++got[r.tokens];
      for (const auto& st : r.steps) drafted += st.drafted, accepted += st.accepted;
    }
    REQUIRE(drafted >= n);  // every run verified a draft
    REQUIRE(accepted > 0);
    REQUIRE(accepted < drafted);  // both outcomes happened
    auto c = chi_square(want, got, n);
    MESSAGE(std::string(qp ? "q drafts" : "point drafts") << ": chi2 " << c.stat << " over " << c.df << " df (limit "
                                               << chi2_critical(c.df) << "); " << accepted << "/" << drafted
                                               << " drafts kept");
    CHECK(c.passes());
  }
}

TEST_CASE("speculative greedy == plain greedy: fixture models and abc-folk, prompt lookup and rejected drafts") {
  std::vector<std::string> models = {fixture("llama_gqa"), fixture("qwen2_bias"), fixture("gpt2"), abc_model()};
  for (const auto& m : models) {
    CAPTURE(m);
    Checkpoint ck(m);
    LoadOptions o;
    auto edge = EdgePieces::load(ck, o);
    LocalBackbone bb(ck, o, ck.config().max_positions);
    const std::vector<int32_t> prompt = {1, 17, 42, 60, 7, 17, 42};
    for (double rep : {1.0, 1.2}) {
      GenerationOptions g;
      g.max_new_tokens = 60;
      g.sampling.repetition_penalty = rep;
      const auto plain = generate(edge, bb, prompt, g, c10::Device(c10::kCPU));
      REQUIRE(plain.tokens.size() == 60);
      for (int variant = 0; variant < 4; ++variant) {
        CAPTURE(rep);
        CAPTURE(variant);
        GenerationOptions sg = g;
        sg.speculation.k_max = variant == 3 ? 1 : 6;
        sg.speculation.adaptive = variant == 0;
        if (variant <= 1 || variant == 3) sg.speculation.drafter = std::make_shared<NgramDrafter>();
        else sg.speculation.drafter = std::make_shared<RandomDrafter>(int32_t(ck.config().vocab_size), 9);
        const auto spec = generate(edge, bb, prompt, sg, c10::Device(c10::kCPU));
        CHECK(spec.tokens == plain.tokens);
        CHECK(spec.stop_reason == plain.stop_reason);
        int64_t tokens = 0;
        for (const auto& st : spec.steps) tokens += st.tokens;
        CHECK(tokens == int64_t(spec.tokens.size()));
      }
    }
  }
}

TEST_CASE("speculative decoding stops where plain decoding stops: eos inside accepted drafts, budgets") {
  Checkpoint ck(fixture("llama_gqa"));
  LoadOptions o;
  auto edge = EdgePieces::load(ck, o);
  LocalBackbone bb(ck, o, ck.config().max_positions);
  const std::vector<int32_t> prompt = {1, 17, 42, 60, 7};
  GenerationOptions g;
  g.max_new_tokens = 40;
  const auto plain = generate(edge, bb, prompt, g, c10::Device(c10::kCPU));
  // the 12th token as a stop id: it may arrive as an accepted draft
  GenerationOptions stop = g;
  stop.stop_ids = {plain.tokens[11]};
  const auto want = generate(edge, bb, prompt, stop, c10::Device(c10::kCPU));
  GenerationOptions spec = stop;
  spec.speculation.drafter = std::make_shared<NgramDrafter>();
  spec.speculation.adaptive = false;
  const auto got = generate(edge, bb, prompt, spec, c10::Device(c10::kCPU));
  CHECK(got.tokens == want.tokens);
  CHECK(got.stop_reason == "eos");
  // a context limit: the same tokens and reason
  GenerationOptions lim = g;
  lim.max_positions = 20;
  const auto want_lim = generate(edge, bb, prompt, lim, c10::Device(c10::kCPU));
  lim.speculation = spec.speculation;
  const auto got_lim = generate(edge, bb, prompt, lim, c10::Device(c10::kCPU));
  CHECK(got_lim.tokens == want_lim.tokens);
  CHECK(got_lim.stop_reason == want_lim.stop_reason);
}

TEST_CASE("the draft length follows acceptance and round trip") {
  auto settle = [](double alpha, double link_ms, double per_pos_ms) {
    DraftLength len(8, true);
    std::mt19937_64 rng(1);
    std::bernoulli_distribution keep(alpha);
    int k = 8;
    for (int round = 0; round < 60; ++round) {
      k = len.next();
      int kept = 0;
      while (kept < k && keep(rng)) ++kept;
      const double compute = 1.0 + per_pos_ms * (k + 1);
      len.observe(k, kept, compute + link_ms, compute, k + 1);
    }
    return len.next();
  };
  const int far_good = settle(0.9, 80, 0.5), near_good = settle(0.9, 0, 0.5);
  const int far_poor = settle(0.3, 80, 0.5), near_poor = settle(0.3, 0, 0.5);
  MESSAGE("k: alpha 0.9 at 80 ms " << far_good << ", at 0 ms " << near_good << "; alpha 0.3 at 80 ms " << far_poor
                                   << ", at 0 ms " << near_poor);
  CHECK(far_good == 8);
  CHECK(far_good > near_good);
  CHECK(far_poor >= 1);
  CHECK(near_poor <= 1);
  CHECK(far_good > far_poor);
  // bursty drafts (prompt lookup): inside a repeat every draft is kept, elsewhere the first fails.
  // Half the rounds keep nothing, so one alpha would be low; counted per depth, long drafts win.
  DraftLength bursty(16, true);
  for (int round = 0; round < 60; ++round) {
    const int k = bursty.next();
    const int kept = round % 2 ? k : 0;
    const double compute = 1.0 + 0.5 * (k + 1);
    bursty.observe(k, kept, compute + 80, compute, k + 1);
  }
  MESSAGE("bursty drafts at 80 ms: k " << bursty.next() << ", first-draft rate " << bursty.acceptance()
                                       << ", E[tokens](16) " << bursty.expected(16));
  CHECK(bursty.next() >= 12);
  CHECK(bursty.acceptance() == doctest::Approx(0.5).epsilon(0.1));
  DraftLength fixed(5, false);
  CHECK(fixed.next() == 5);
  CHECK(DraftLength::expected_tokens(0.0, 4) == doctest::Approx(1.0));
  CHECK(DraftLength::expected_tokens(1.0, 4) == doctest::Approx(5.0));
}
