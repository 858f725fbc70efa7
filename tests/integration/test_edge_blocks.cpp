// --edge-blocks K against a daemon run with --first-block K: the edge runs blocks [0, K) in
// process and sends their output; split == monolithic over 1 and 2 stages, greedy, sampled and
// speculative; a mismatched pair is refused at the handshake with a sentence naming the flag.
#include "../common/torch_doctest.hpp"

#include "common/checkpoint.hpp"
#include "common/speculative.hpp"
#include "edge/client/edge_client.hpp"
#include "edge_helpers.hpp"

using namespace duet;
using namespace duet::itest;

TEST_CASE("edge blocks: split with the first K blocks on the edge == monolithic") {
  struct Case {
    std::string model;
    int k;
  };
  for (const auto& c : {Case{fixture_model("llama_gqa"), 1}, Case{fixture_model("gpt2"), 1}, Case{abc_model(), 2}}) {
    CAPTURE(c.model);
    const std::vector<int32_t> prompt = {1, 17, 42, 60, 7, 17, 42};
    const auto greedy = fixed_options(24);
    const auto sampled_opts = fixed_options(24, sampled(8));
    const auto want = local_tokens(c.model, prompt, greedy);
    const auto want_sampled = local_tokens(c.model, prompt, sampled_opts);
    for (const std::vector<std::string>& layout : {std::vector<std::string>{"--devices", "cpu"},
                                                   std::vector<std::string>{"--devices", "cpu,cpu"}}) {
      CAPTURE(layout.back());
      auto args = layout;
      args.insert(args.end(), {"--first-block", std::to_string(c.k)});
      DaemonProcess d(secure_args(c.model, args));
      INFO(d.log());
      auto cfg = split_config(c.model, d.endpoint());
      cfg.edge_blocks = c.k;
      CHECK(split_tokens(cfg, prompt, greedy) == want);
      CHECK(split_tokens(cfg, prompt, sampled_opts) == want_sampled);
      auto spec = greedy;
      spec.speculation.drafter = std::make_shared<NgramDrafter>();
      CHECK(split_tokens(cfg, prompt, spec) == want);
      // the edge that keeps no block is refused by this daemon, and told what to do
      try {
        split_tokens(split_config(c.model, d.endpoint()), prompt, greedy);
        FAIL("an edge without --edge-blocks was served by a --first-block daemon");
      } catch (const edge::CloudError& e) {
        CHECK(std::string(e.what()).find("--edge-blocks " + std::to_string(c.k)) != std::string::npos);
      }
      CHECK(d.stop() == 0);
    }
  }
}
