#include "../common/torch_doctest.hpp"

#include "edge_helpers.hpp"

#include <map>
#include <mutex>
#include <tuple>

#include "common/checkpoint.hpp"
#include "common/wire/tensor_frames.hpp"
#include "edge/client/edge_client.hpp"

namespace duet::itest {

void GreedyStepper::step() {
  torch::NoGradGuard ng;
  std::vector<int64_t> ids(pending.begin(), pending.end());
  auto out = backbone.forward(pieces.embedding->forward(torch::tensor(ids), start), start, true);
  const auto next = static_cast<int32_t>(pieces.logits(out)[0].argmax().item<int64_t>());
  start += static_cast<int64_t>(pending.size());
  tokens.push_back(next);
  pending = {next};
}

edge::EdgeConfig split_config(const std::string& model, const std::string& endpoint, int64_t timeout_ms) {
  edge::EdgeConfig c;
  c.model_path = model;
  c.server = endpoint;
  c.server_key = keys().server_public.string();
  c.client_key = keys().edge_secret.string();
  c.timeout_ms = timeout_ms;
  return c;
}

edge::EdgeConfig local_config(const std::string& model) {
  edge::EdgeConfig c;
  c.model_path = model;
  return c;
}

GenerationOptions fixed_options(int64_t n, const SamplingOptions& s) {
  GenerationOptions g;
  g.max_new_tokens = n;
  g.sampling = s;
  return g;
}

SamplingOptions sampled(uint64_t seed) {
  SamplingOptions s;
  s.temperature = 0.9;
  s.top_k = 20;
  s.top_p = 0.9;
  s.seed = seed;
  return s;
}

std::vector<int32_t> local_tokens(const std::string& model, const std::vector<int32_t>& prompt,
                                  const GenerationOptions& opts) {
  using Key = std::tuple<std::string, std::vector<int32_t>, int64_t, double, int64_t, double, uint64_t>;
  static std::map<Key, std::vector<int32_t>> cache;
  static std::mutex mu;
  const Key key{model, prompt, opts.max_new_tokens, opts.sampling.temperature, opts.sampling.top_k,
                opts.sampling.top_p, opts.sampling.seed};
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  edge::EdgeClient client(local_config(model), /*local=*/true);
  auto res = client.generate(prompt, opts);
  REQUIRE(res.tokens.size() == size_t(opts.max_new_tokens));
  return cache[key] = res.tokens;
}

std::vector<int32_t> split_tokens(const edge::EdgeConfig& cfg, const std::vector<int32_t>& prompt,
                                  const GenerationOptions& opts, int* resumes) {
  edge::EdgeClient client(cfg, /*local=*/false);
  auto res = client.generate(prompt, opts);
  if (resumes) *resumes = client.resumes();
  return res.tokens;
}

std::string fingerprint_of(const std::string& model) {
  Checkpoint ck(model);
  return model_fingerprint(ck);
}

void check_serves(const std::string& endpoint, const std::string& model) {
  auto opts = fixed_options(8);
  const auto want = local_tokens(model, kPrompt, opts);
  std::vector<int32_t> got;
  try {
    got = split_tokens(split_config(model, endpoint), kPrompt, opts);
  } catch (const std::exception& e) {
    FAIL("the daemon no longer serves a fresh session: " << std::string(e.what()));
  }
  CHECK_MESSAGE(got == want, "a fresh session after the abuse gives other tokens than the reference");
}

}  // namespace duet::itest
