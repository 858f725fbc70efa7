#pragma once
// The generation loop: embed, run the backbone, norm + head, pick a token, repeat. One loop for
// the monolithic reference and for the split edge; only the Backbone differs.
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/backbone.hpp"
#include "common/generation_result.hpp"
#include "common/sampling_options.hpp"
#include "common/speculative.hpp"

namespace duet {

// What the edge keeps: embedding (with learned positions), final norm, LM head.
struct EdgePieces {
  std::unique_ptr<Embedding> embedding;
  std::unique_ptr<FinalNorm> norm;
  std::unique_ptr<LmHead> head;
  static EdgePieces load(const Checkpoint& ckpt, const LoadOptions& opts);
  torch::Tensor logits(const torch::Tensor& hidden) const;  // [n, H] -> fp32 [n, vocab]
};

// Sees each step's logits ([vocab], fp32, on the edge device) before the sampler and may change them
// in place, e.g. set forbidden tokens to -inf (the sampler never picks those); history = the ids so
// far (prompt + generated). Used by the edge's music constraint.
using LogitsProcessor = std::function<void(torch::Tensor& logits, const std::vector<int32_t>& history)>;

struct GenerationOptions {
  int64_t max_new_tokens = 64;
  SamplingOptions sampling;
  std::vector<int32_t> stop_ids;  // usually the model's EOS ids
  int64_t max_positions = 0;      // 0: the model's limit
  LogitsProcessor logits_processor;  // null: the logits go to the sampler untouched
  SpeculationOptions speculation;    // a drafter: several tokens per backbone call (common/speculative.hpp)
};

using TokenCallback = std::function<void(int32_t)>;

// Plain decoding (one position per backbone call) or, with opts.speculation.drafter set,
// speculative decoding (generate_speculative, common/speculative_loop.cpp): greedy gives the same
// tokens either way, sampling the same distribution.
GenerationResult generate(const EdgePieces& edge, Backbone& backbone, const std::vector<int32_t>& prompt,
                          const GenerationOptions& opts, const c10::Device& edge_device,
                          const TokenCallback& on_token = nullptr);
GenerationResult generate_speculative(const EdgePieces& edge, Backbone& backbone, const std::vector<int32_t>& prompt,
                                      const GenerationOptions& opts, const c10::Device& edge_device,
                                      const TokenCallback& on_token = nullptr);
// Throws for an empty prompt or one longer than opts.max_positions.
void check_prompt(const std::vector<int32_t>& prompt, const GenerationOptions& opts);

}  // namespace duet
