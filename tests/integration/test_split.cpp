// The correctness anchor across a real daemon: split tokens == the monolithic reference, for every
// fixture model and the bundled abc-folk, over 1, 2 and 3 stages, greedy and sampled; and two
// sessions stepping alternately against one daemon give what each gives alone.
#include "../common/torch_doctest.hpp"

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/checkpoint.hpp"
#include "common/wire/tensor_frames.hpp"
#include "edge/client/cloud_connection.hpp"
#include "edge/client/edge_client.hpp"
#include "edge/client/remote_backbone.hpp"
#include "edge_helpers.hpp"

using namespace duet;
using namespace duet::itest;

namespace {

struct Layout {
  std::string name;
  std::vector<std::string> args;  // --devices / --plan
  int stages;
};

std::vector<Layout> layouts_for(int64_t layers) {
  std::vector<Layout> l = {{"1 stage", {"--devices", "cpu"}, 1}, {"2 stages (auto)", {"--devices", "cpu,cpu"}, 2}};
  if (layers >= 3) {
    // explicit 3-stage plan: layers as evenly as they go
    std::string plan;
    for (int64_t s = 0, first = 0; s < 3; ++s) {
      const int64_t last = first + layers / 3 + (s < layers % 3 ? 1 : 0) - 1;
      plan += (s ? "," : "") + std::string("cpu=") + std::to_string(first) + "-" + std::to_string(last);
      first = last + 1;
    }
    l.push_back({"3 stages (" + plan + ")", {"--plan", plan}, 3});
  } else {
    l.push_back({"2 stages (explicit)", {"--plan", "cpu=0-0,cpu=1-1"}, 2});
  }
  return l;
}

int64_t layers_of(const std::string& model) { return Checkpoint(model).config().num_layers; }

}  // namespace

TEST_CASE("split == monolithic for each fixture model over 1, 2 and 3 stages, greedy and sampled") {
  // every golden fixture: Gemma's local/global layers fall in different stages, Phi-3's and
  // dynamic NTK's per-position RoPE runs past their original context (16) within the 29 positions
  for (const char* name : {"llama_gqa", "qwen2_bias", "gpt2", "qwen3", "phi3_longrope", "gemma2", "gemma3", "rope_llama3",
                           "rope_yarn", "rope_dynamic", "rope_linear", "mistral_window"}) {
    const std::string model = fixture_model(name);
    const auto greedy = fixed_options(24);
    const auto sampled_opts = fixed_options(24, sampled(1234));
    const auto want_greedy = local_tokens(model, kPrompt, greedy);
    const auto want_sampled = local_tokens(model, kPrompt, sampled_opts);
    REQUIRE(want_greedy != want_sampled);  // the sampled run really samples
    for (const auto& layout : layouts_for(layers_of(model))) {
      CAPTURE(std::string(name));
      CAPTURE(layout.name);
      DaemonProcess d(secure_args(model, layout.args));
      INFO(d.log());
      CHECK(stage_count(d.log()) == layout.stages);
      CHECK(split_tokens(split_config(model, d.endpoint()), kPrompt, greedy) == want_greedy);
      CHECK(split_tokens(split_config(model, d.endpoint()), kPrompt, sampled_opts) == want_sampled);
      CHECK(d.stop() == 0);
    }
  }
}

TEST_CASE("abc-folk: split greedy == transformers' reference_greedy.json over 1, 2 and 3 stages") {
  std::ifstream in(abc_model() + "/reference_greedy.json");
  REQUIRE(in.good());
  const auto ref = nlohmann::json::parse(in);
  REQUIRE(ref["cases"].size() >= 1);
  const auto opts = fixed_options(ref["new_tokens"].get<int64_t>());  // no stop: the reference ran to its budget
  for (const auto& layout : layouts_for(layers_of(abc_model()))) {
    CAPTURE(layout.name);
    DaemonProcess d(secure_args(abc_model(), layout.args));
    INFO(d.log());
    CHECK(stage_count(d.log()) == layout.stages);
    for (const auto& c : ref["cases"]) {
      CAPTURE(c["prompt"].get<std::string>());
      const auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
      const auto want = c["greedy_ids"].get<std::vector<int32_t>>();
      CHECK(split_tokens(split_config(abc_model(), d.endpoint()), prompt, opts) == want);
    }
    CHECK(d.stop() == 0);
  }
  // and the monolithic path agrees too, so split == monolithic == transformers
  for (const auto& c : ref["cases"])
    CHECK(local_tokens(abc_model(), c["prompt_ids"].get<std::vector<int32_t>>(), opts) ==
          c["greedy_ids"].get<std::vector<int32_t>>());
}

namespace {

// Strict alternation between two threads: each step of one is followed by a step of the other.
class Turns {
 public:
  void wait(int me) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return turn_ == me || done_[1 - me]; });
  }
  void pass(int me) {
    std::lock_guard<std::mutex> lock(mu_);
    turn_ = 1 - me;
    ++passes_;
    cv_.notify_all();
  }
  void finish(int me) {
    std::lock_guard<std::mutex> lock(mu_);
    done_[me] = true;
    turn_ = 1 - me;
    cv_.notify_all();
  }
  int passes() const { return passes_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int turn_ = 0;
  bool done_[2] = {false, false};
  int passes_ = 0;
};

}  // namespace

// --spin-us trades wake-ups for busy cores after activity (common/spin_window.hpp): the tokens
// are unchanged, and once the traffic stops the daemon sleeps again instead of spinning on.
TEST_CASE("with --spin-us on the daemon and the edge, split == monolithic, and an idle daemon does not spin") {
  const std::string model = fixture_model("llama_gqa");
  const auto greedy = fixed_options(24);
  const auto sampled_opts = fixed_options(24, sampled(99));
  DaemonProcess d(secure_args(model, {"--devices", "cpu,cpu", "--spin-us", "5000"}));
  INFO(d.log());
  auto cfg = split_config(model, d.endpoint());
  cfg.spin_us = 5000;
  CHECK(split_tokens(cfg, kPrompt, greedy) == local_tokens(model, kPrompt, greedy));
  CHECK(split_tokens(cfg, kPrompt, sampled_opts) == local_tokens(model, kPrompt, sampled_opts));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the last spin windows close
  const double before = proc_cpu_seconds(d.process().pid());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const double idle_cpu = proc_cpu_seconds(d.process().pid()) - before;
  MESSAGE("daemon CPU over 1.5 s idle with --spin-us 5000: " << idle_cpu << " s");
  CHECK(idle_cpu < 0.3);  // two threads spinning on would use ~3 s
  CHECK(d.stop() == 0);
}

TEST_CASE("two edge sessions interleaved against one daemon give the tokens each gives alone") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--devices", "cpu,cpu"}));
  INFO(d.log());
  const std::vector<int32_t> prompts[2] = {{1, 17, 42}, {1, 99, 3, 64, 5, 21}};
  const GenerationOptions opts[2] = {fixed_options(20, sampled(7)), fixed_options(20)};
  std::vector<int32_t> want[2];
  for (int i = 0; i < 2; ++i) want[i] = local_tokens(model, prompts[i], opts[i]);
  REQUIRE(want[0] != want[1]);

  SUBCASE("two EdgeClients on two threads, steps strictly alternating") {
    Turns turns;
    std::vector<int32_t> got[2];
    std::string error[2];
    auto run = [&](int me) {
      try {
        edge::EdgeClient client(split_config(model, d.endpoint()), false);
        turns.wait(me);
        auto res = client.generate(prompts[me], opts[me], [&](int32_t) {
          turns.pass(me);
          turns.wait(me);
        });
        got[me] = res.tokens;
      } catch (const std::exception& e) {
        error[me] = e.what();
      }
      turns.finish(me);
    };
    std::thread a(run, 0), b(run, 1);
    a.join();
    b.join();
    CHECK(error[0] == "");
    CHECK(error[1] == "");
    CHECK(turns.passes() == 40);
    CHECK(got[0] == want[0]);
    CHECK(got[1] == want[1]);
  }

  SUBCASE("two RemoteBackbones on one connection, stepped by hand in alternation") {
    Checkpoint ck(model);
    auto pieces = EdgePieces::load(ck, LoadOptions{});
    edge::CloudConnection conn(edge::connection_options(split_config(model, d.endpoint())), model_fingerprint(ck));
    edge::RemoteBackbone bb0(conn), bb1(conn);
    edge::RemoteBackbone* bb[2] = {&bb0, &bb1};
    // greedy both (the second prompt's reference is greedy; redo the first greedily too)
    const auto want0 = local_tokens(model, prompts[0], fixed_options(20));
    std::vector<int32_t> pending[2] = {prompts[0], prompts[1]};
    int64_t start[2] = {0, 0};
    std::vector<int32_t> got[2];
    torch::NoGradGuard ng;
    for (int step = 0; step < 20; ++step) {
      for (int i = 0; i < 2; ++i) {
        std::vector<int64_t> ids(pending[i].begin(), pending[i].end());
        auto h = pieces.embedding->forward(torch::tensor(ids), start[i]);
        auto out = bb[i]->forward(h, start[i], true);
        const auto next = static_cast<int32_t>(pieces.logits(out)[0].argmax().item<int64_t>());
        start[i] += static_cast<int64_t>(pending[i].size());
        got[i].push_back(next);
        pending[i] = {next};
      }
    }
    CHECK(bb0.session_id() != bb1.session_id());
    CHECK(got[0] == want0);
    CHECK(got[1] == want[1]);
  }
  CHECK(d.stop() == 0);
}
