// The generation loop with drafts: each backbone call carries the last emitted token and up to k
// drafted ones, returns every one of those positions, and the edge keeps the longest verified
// prefix plus one token (common/speculative.hpp). KV of rejected positions stays on the backbone
// past the new length; the next call starts at the first position not verified and overwrites it.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "common/generator.hpp"
#include "common/sampler.hpp"
#include "common/speculative.hpp"

namespace duet {

namespace {
double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

GenerationResult generate_speculative(const EdgePieces& edge, Backbone& backbone, const std::vector<int32_t>& prompt,
                                      const GenerationOptions& opts, const c10::Device& edge_device,
                                      const TokenCallback& on_token) {
  check_prompt(prompt, opts);
  if (!opts.speculation.drafter) throw std::invalid_argument("speculative generation needs a drafter");
  torch::NoGradGuard no_grad;
  Sampler sampler(opts.sampling);
  DraftLength length(opts.speculation.k_max, opts.speculation.adaptive);
  Drafter& drafter = *opts.speculation.drafter;
  GenerationResult res;
  std::vector<int32_t> history = prompt;
  std::vector<int32_t> pending = prompt;  // verified ids whose KV the backbone does not hold yet
  int64_t start = 0;                      // positions [0, start) hold verified ids
  bool prefill = true;
  backbone.reset();
  if (opts.max_new_tokens <= 0) {
    res.stop_reason = "max_new_tokens";
    return res;
  }
  // true when generation ends with this token
  auto emit = [&](int32_t t) {
    res.tokens.push_back(t);
    history.push_back(t);
    if (on_token) on_token(t);
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), t) != opts.stop_ids.end()) {
      res.stop_reason = "eos";
      return true;
    }
    if (static_cast<int64_t>(res.tokens.size()) >= opts.max_new_tokens) {
      res.stop_reason = "max_new_tokens";
      return true;
    }
    return false;
  };
  for (;;) {
    const int64_t base = start + static_cast<int64_t>(pending.size());  // position of the first draft
    if (opts.max_positions > 0 && base > opts.max_positions) {
      res.stop_reason = "max_positions";
      return res;
    }
    // the prefill returns its last row only; drafting starts with the first decode round
    int64_t k = prefill ? 0 : length.next();
    k = std::min<int64_t>(k, opts.max_new_tokens - static_cast<int64_t>(res.tokens.size()) - 1);
    if (opts.max_positions > 0) k = std::min<int64_t>(k, opts.max_positions - base);
    DraftProposal draft;
    if (k > 0) draft = drafter.propose(history, static_cast<int>(k));
    if (static_cast<int64_t>(draft.tokens.size()) > k) draft.tokens.resize(static_cast<size_t>(k));
    const int64_t nd = static_cast<int64_t>(draft.tokens.size());

    StepStats st;
    st.drafted = nd;
    std::vector<int64_t> ids(pending.begin(), pending.end());
    ids.insert(ids.end(), draft.tokens.begin(), draft.tokens.end());
    st.positions = static_cast<int64_t>(ids.size());
    auto t0 = std::chrono::steady_clock::now();
    auto hidden = edge.embedding->forward(torch::tensor(ids, torch::TensorOptions().dtype(torch::kLong)).to(edge_device),
                                          start);  // [n, H]
    st.edge_ms = ms_since(t0);
    st.embed_ms = st.edge_ms;

    auto t1 = std::chrono::steady_clock::now();
    auto out = backbone.forward(hidden, start, /*last_only=*/nd == 0).to(edge_device);
    st.backbone_ms = ms_since(t1);
    st.cloud_ms = backbone.last_compute_ms();
    st.backbone = backbone.last_timing();

    auto t2 = std::chrono::steady_clock::now();
    out = out.narrow(0, out.size(0) - (nd + 1), nd + 1);  // the rows that predict: last sent id + each draft
    auto logits = edge.logits(out);                       // [nd + 1, vocab]
    st.head_ms = ms_since(t2);
    int64_t accepted = 0, emitted = 0;
    bool stop = false;
    for (int64_t i = 0; i <= nd && !stop; ++i) {
      auto row = logits[i];
      if (opts.logits_processor) opts.logits_processor(row, history);
      const TokenDistribution p = sampler.distribution(row, history);
      ++emitted;
      if (i == nd) {  // every draft kept (or none sent): one more token from p
        stop = emit(sampler.draw(p));
        break;
      }
      const TokenDistribution* q = draft.q.empty() ? nullptr : &draft.q[static_cast<size_t>(i)];
      const Verdict v = verify_draft(p, draft.tokens[static_cast<size_t>(i)], q, sampler);
      stop = emit(v.token);
      if (!v.accepted) break;
      ++accepted;
    }
    st.edge_ms += ms_since(t2);
    st.sample_ms = st.edge_ms - st.embed_ms - st.head_ms;  // verification included
    st.accepted = accepted;
    st.tokens = emitted;
    res.steps.push_back(st);
    if (!prefill) {
      const double compute = (st.cloud_ms >= 0 ? st.cloud_ms : st.backbone_ms) + st.edge_ms;
      length.observe(static_cast<int>(nd), static_cast<int>(accepted), st.backbone_ms + st.edge_ms, compute,
                     st.positions);
    }
    prefill = false;
    if (stop) return res;
    start = base + accepted;  // the rejected drafts' positions are overwritten next round
    pending.assign(1, history.back());
  }
}

}  // namespace duet
