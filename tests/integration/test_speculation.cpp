// Several tokens per round trip across a real daemon: speculative greedy == plain greedy (prompt
// lookup, and drafts that are nearly all rejected so every round rewinds the daemon's KV) over 1
// and 2 stages for the fixture models and abc-folk; speculative sampling split == the same seed
// in process; resume after an expired session; int8/fp16/bf16 on the wire; duet-edge --draft.
#include "../common/torch_doctest.hpp"

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/checkpoint.hpp"
#include "common/speculative.hpp"
#include "tests/common/random_drafter.hpp"
#include "edge/client/edge_client.hpp"
#include "edge_helpers.hpp"

using namespace duet;
using namespace duet::itest;

namespace {

using duet::test::RandomDrafter;

GenerationOptions with_drafter(GenerationOptions g, std::shared_ptr<Drafter> d, int k = 6, bool adaptive = true) {
  g.speculation.drafter = std::move(d);
  g.speculation.k_max = k;
  g.speculation.adaptive = adaptive;
  return g;
}

// tokens, and the decode rounds it took
std::pair<std::vector<int32_t>, size_t> run(edge::EdgeClient& c, const std::vector<int32_t>& prompt,
                                            const GenerationOptions& g) {
  auto r = c.generate(prompt, g);
  return {r.tokens, r.steps.size()};
}

}  // namespace

TEST_CASE("speculative greedy over a daemon (1 and 2 stages) == plain greedy; sampled split == sampled in process") {
  const std::vector<int32_t> repetitive = {1, 17, 42, 60, 7, 17, 42, 60, 7, 17, 42};
  for (const std::string& model : {fixture_model("llama_gqa"), fixture_model("qwen2_bias"), fixture_model("gpt2"),
                                   abc_model()}) {
    CAPTURE(model);
    const int32_t vocab = int32_t(Checkpoint(model).config().vocab_size);
    const auto greedy = fixed_options(48);
    const auto want = local_tokens(model, repetitive, greedy);
    const auto sampled_spec = with_drafter(fixed_options(32, sampled(21)), std::make_shared<NgramDrafter>(), 4, false);
    edge::EdgeClient local(local_config(model), true);
    const auto want_sampled = local.generate(repetitive, sampled_spec).tokens;
    for (const std::vector<std::string>& layout : {std::vector<std::string>{"--devices", "cpu"},
                                                   std::vector<std::string>{"--devices", "cpu,cpu"}}) {
      CAPTURE(layout.back());
      DaemonProcess d(secure_args(model, layout));
      INFO(d.log());
      edge::EdgeClient c(split_config(model, d.endpoint()), false);
      const auto [ngram, rounds] = run(c, repetitive, with_drafter(greedy, std::make_shared<NgramDrafter>()));
      CHECK(ngram == want);
      CHECK(rounds <= want.size());
      CHECK(run(c, repetitive, with_drafter(greedy, std::make_shared<RandomDrafter>(vocab, 3), 5, false)).first == want);
      CHECK(c.generate(repetitive, sampled_spec).tokens == want_sampled);
      CHECK(c.resumes() == 0);
      CHECK(d.stop() == 0);
    }
  }
}

TEST_CASE("speculative decoding resumes after the daemon forgot the session, and runs over every wire codec") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--idle-timeout", "1", "--devices", "cpu,cpu"}));
  INFO(d.log());
  const std::vector<int32_t> prompt = {1, 17, 42, 60, 7, 17, 42};
  const auto greedy = fixed_options(24);
  const auto want = local_tokens(model, prompt, greedy);
  {
    edge::EdgeClient c(split_config(model, d.endpoint()), false);
    int seen = 0;
    auto res = c.generate(prompt, with_drafter(greedy, std::make_shared<RandomDrafter>(128, 5), 4, false),
                          [&](int32_t) {
                            if (++seen == 6) std::this_thread::sleep_for(std::chrono::milliseconds(2500));
                          });
    CHECK(c.resumes() >= 1);
    CHECK(res.tokens == want);
  }
  for (const char* wire : {"fp32", "bf16", "fp16", "int8"}) {
    CAPTURE(wire);
    auto cfg = split_config(model, d.endpoint());
    cfg.wire_dtype = wire;
    edge::EdgeClient c(cfg, false);
    // the tiny random model's logits are close together: compare the codec's run with and
    // without drafts (same codec), which must agree exactly
    const auto plain = c.generate(prompt, greedy).tokens;
    CHECK(c.generate(prompt, with_drafter(greedy, std::make_shared<NgramDrafter>())).tokens == plain);
    if (std::string(wire) == "fp32") CHECK(plain == want);
  }
  {  // duet-edge --draft ngram --json: the tokens of --draft none, with drafts and tokens per round trip
    const auto& k = keys();
    auto args = [&](const std::string& draft) {
      return std::vector<std::string>{"generate", "--model", model, "--json", "--server", d.endpoint(), "--server-key",
                                      k.server_public.string(), "--client-key", k.edge_secret.string(),
                                      "--prompt-ids", "1,17,42,60,7,17,42", "-n", "24", "--draft", draft};
    };
    auto plain = run_process(edge_binary(), args("none"));
    auto spec = run_process(edge_binary(), args("ngram"));
    INFO(spec.err);
    REQUIRE(plain.status == 0);
    REQUIRE(spec.status == 0);
    const auto p = nlohmann::json::parse(plain.out), s = nlohmann::json::parse(spec.out);
    CHECK(s["tokens"] == p["tokens"]);
    CHECK(s["draft"] == "ngram");
    CHECK(p["tokens_per_round_trip"].get<double>() == doctest::Approx(1.0));
    CHECK(s["tokens_per_round_trip"].get<double>() >= 1.0);
    int64_t drafted = 0, tokens = 0;
    for (const auto& st : s["steps"]) drafted += st["drafted"].get<int64_t>(), tokens += st["tokens"].get<int64_t>();
    CHECK(drafted > 0);
    CHECK(tokens == int64_t(s["tokens"].size()));
  }
  check_serves(d.endpoint(), model);
  CHECK(d.stop() == 0);
}
