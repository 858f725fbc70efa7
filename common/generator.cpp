#include "common/generator.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "common/sampler.hpp"

namespace duet {

namespace {
double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

EdgePieces EdgePieces::load(const Checkpoint& ckpt, const LoadOptions& opts) {
  EdgePieces e;
  e.embedding = load_embedding(ckpt, opts);
  e.norm = load_final_norm(ckpt, opts);
  e.head = load_lm_head(ckpt, opts, e.embedding.get());
  return e;
}

torch::Tensor EdgePieces::logits(const torch::Tensor& hidden) const { return head->forward(norm->forward(hidden)); }

void check_prompt(const std::vector<int32_t>& prompt, const GenerationOptions& opts) {
  if (prompt.empty()) throw std::invalid_argument("the prompt is empty: give at least one token");
  if (opts.max_positions > 0 && static_cast<int64_t>(prompt.size()) > opts.max_positions)
    throw std::length_error("the prompt has " + std::to_string(prompt.size()) + " tokens, more than the " +
                            std::to_string(opts.max_positions) + " positions allowed");
}

GenerationResult generate(const EdgePieces& edge, Backbone& backbone, const std::vector<int32_t>& prompt,
                          const GenerationOptions& opts, const c10::Device& edge_device, const TokenCallback& on_token) {
  if (opts.speculation.drafter && opts.speculation.k_max > 0)
    return generate_speculative(edge, backbone, prompt, opts, edge_device, on_token);
  check_prompt(prompt, opts);
  torch::NoGradGuard no_grad;
  Sampler sampler(opts.sampling);
  GenerationResult res;
  std::vector<int32_t> history = prompt;
  std::vector<int64_t> pending(prompt.begin(), prompt.end());  // ids not yet sent to the backbone
  int64_t start = 0;
  backbone.reset();
  while (static_cast<int64_t>(res.tokens.size()) < opts.max_new_tokens) {
    if (opts.max_positions > 0 && start + static_cast<int64_t>(pending.size()) > opts.max_positions) {
      res.stop_reason = "max_positions";
      return res;
    }
    StepStats st;
    st.positions = static_cast<int64_t>(pending.size());
    auto t0 = std::chrono::steady_clock::now();
    auto ids = torch::tensor(pending, torch::TensorOptions().dtype(torch::kLong)).to(edge_device);
    auto hidden = edge.embedding->forward(ids, start);  // [n, H]
    st.edge_ms = ms_since(t0);

    st.embed_ms = st.edge_ms;

    auto t1 = std::chrono::steady_clock::now();
    auto out = backbone.forward(hidden, start, /*last_only=*/true).to(edge_device);  // [1, H]
    st.backbone_ms = ms_since(t1);
    st.cloud_ms = backbone.last_compute_ms();
    st.backbone = backbone.last_timing();

    auto t2 = std::chrono::steady_clock::now();
    auto logits = edge.logits(out)[0];  // [vocab]
    st.head_ms = ms_since(t2);
    auto t3 = std::chrono::steady_clock::now();
    if (opts.logits_processor) opts.logits_processor(logits, history);
    const int32_t next = sampler.next(logits, history);
    st.sample_ms = ms_since(t3);
    st.edge_ms += st.head_ms + st.sample_ms;
    res.steps.push_back(st);

    start += static_cast<int64_t>(pending.size());
    res.tokens.push_back(next);
    history.push_back(next);
    if (on_token) on_token(next);
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), next) != opts.stop_ids.end()) {
      res.stop_reason = "eos";
      return res;
    }
    pending.assign(1, next);
  }
  res.stop_reason = "max_new_tokens";
  return res;
}

}  // namespace duet
