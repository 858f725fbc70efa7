// The static decode path (what a CUDA graph captures: position on the device, attention over the
// whole cache capacity under a mask) must compute what the eager decode computes.
#include "torch_doctest.hpp"

#include "common/backbone.hpp"
#include "common/decode_graph.hpp"
#include "common/generator.hpp"

using namespace duet;

namespace {
std::string fixture(const std::string& name) { return std::string(DUET_FIXTURES_DIR) + "/models/" + name; }
}  // namespace

TEST_CASE("KV cache memory starts as zeros, also after growing (the static path reads all of it)") {
  LayerKvCache c(2, 4, 1024, torch::kFloat, torch::kCPU);
  REQUIRE(c.all_keys().eq(0).all().item<bool>());
  REQUIRE(c.all_values().eq(0).all().item<bool>());
  c.write(0, torch::ones({2, 3, 4}), torch::ones({2, 3, 4}));
  for (int64_t p = 3; p <= LayerKvCache::kChunk; ++p) c.write(p, torch::ones({2, 1, 4}), torch::ones({2, 1, 4}));
  REQUIRE(c.capacity() == 2 * LayerKvCache::kChunk);  // grown
  auto tail = c.all_keys().narrow(1, c.length(), c.capacity() - c.length());
  REQUIRE(tail.eq(0).all().item<bool>());
  REQUIRE(c.all_values().narrow(1, 0, c.length()).eq(1).all().item<bool>());
}

TEST_CASE("static decode matches eager decode step by step (fp32, CPU)") {
  torch::NoGradGuard ng;
  for (const char* name : {"llama_gqa", "qwen2_bias", "gpt2"}) {
    CAPTURE(std::string(name));
    Checkpoint ck(fixture(name));
    LoadOptions o;
    const auto& c = ck.config();
    std::vector<std::unique_ptr<Block>> blocks;
    std::vector<LayerKvCache> eager, stat;
    for (int64_t i = 0; i < c.num_layers; ++i) {
      blocks.push_back(load_block(ck, i, o));
      eager.push_back(blocks.back()->make_cache(c.max_positions));
      stat.push_back(blocks.back()->make_cache(c.max_positions));
    }
    std::vector<const Block*> bp;
    std::vector<LayerKvCache*> sp;
    for (size_t i = 0; i < blocks.size(); ++i) {
      bp.push_back(blocks[i].get());
      sp.push_back(&stat[i]);
    }
    torch::manual_seed(7);
    const int64_t prompt = 5, steps = 6;
    auto x0 = torch::randn({prompt, c.hidden_size});
    // prefill both eagerly
    auto a = x0, b = x0;
    for (size_t i = 0; i < blocks.size(); ++i) {
      a = blocks[i]->forward(a, eager[i], 0);
      b = blocks[i]->forward(b, stat[i], 0);
    }
    for (int64_t s = 0; s < steps; ++s) {
      auto x = torch::randn({1, c.hidden_size});
      auto want = x;
      for (size_t i = 0; i < blocks.size(); ++i) want = blocks[i]->forward(want, eager[i], prompt + s);
      auto got = static_decode_step(bp, sp, x, prompt + s);
      REQUIRE(got.sizes() == want.sizes());
      const double err = ((got - want).norm() / want.norm()).item<double>();
      CHECK(err < 1e-5);
      CHECK(stat[0].length() == prompt + s + 1);
    }
  }
}
