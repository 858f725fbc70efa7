// Edge-side helpers for the integration tests (LibTorch): the monolithic reference, split runs
// through EdgeClient, and the "daemon still serves correctly" check.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/backbone.hpp"
#include "common/generator.hpp"
#include "edge/client/edge_config.hpp"
#include "harness.hpp"

namespace duet::itest {

// Prompts for the fixture models (vocab 128) and abc-folk (vocab 85).
inline const std::vector<int32_t> kPrompt = {1, 17, 42, 60, 7};

// An edge config for `model` against a daemon at `endpoint`, with the shared authorized key.
edge::EdgeConfig split_config(const std::string& model, const std::string& endpoint, int64_t timeout_ms = 5000);
edge::EdgeConfig local_config(const std::string& model);

// `n` tokens, no stop ids (so every run goes to its budget), the given sampling.
GenerationOptions fixed_options(int64_t n, const SamplingOptions& s = {});
SamplingOptions sampled(uint64_t seed = 1234);  // temperature 0.9, top_k 20, top_p 0.9

// The monolithic reference (EdgeClient with local = true); cached per (model, prompt, options).
std::vector<int32_t> local_tokens(const std::string& model, const std::vector<int32_t>& prompt,
                                  const GenerationOptions& opts);
// One split generation through a fresh EdgeClient.
std::vector<int32_t> split_tokens(const edge::EdgeConfig& cfg, const std::vector<int32_t>& prompt,
                                  const GenerationOptions& opts, int* resumes = nullptr);

std::string fingerprint_of(const std::string& model);

// A short greedy split generation on a fresh connection equals the local reference.
void check_serves(const std::string& endpoint, const std::string& model);

// Greedy decoding by hand, one step per call, so that tests decide when each backbone runs.
struct GreedyStepper {
  const EdgePieces& pieces;
  Backbone& backbone;
  std::vector<int32_t> pending;
  int64_t start = 0;
  std::vector<int32_t> tokens;
  GreedyStepper(const EdgePieces& p, Backbone& b, std::vector<int32_t> prompt)
      : pieces(p), backbone(b), pending(std::move(prompt)) {}
  void step();
};

}  // namespace duet::itest
