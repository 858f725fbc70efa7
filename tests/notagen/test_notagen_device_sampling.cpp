// NotaGen's characters drawn on the device (DeviceSampler, one sync per patch) give the piece the
// host's Sampler gives for the same seed: the tiny fixture model on CPU tensors, NotaGen's
// sampling order and transformers', greedy, EOS stop and full patches, a prompt ending mid-bar
// (its characters start the first patch) and the long-piece rule's cuts.
#include "../common/torch_doctest.hpp"

#include "common/backbone.hpp"
#include "common/checkpoint.hpp"
#include "edge/notagen/piece_generator.hpp"

using namespace duet;
using namespace duet::notagen;

namespace {

std::string tiny() { return std::string(DUET_FIXTURES_DIR) + "/notagen/tiny"; }

struct Pair {
  PieceResult host, device;
};

Pair both_ways(PieceGenerator& gen, Backbone& bb, const std::string& prompt, PieceOptions o) {
  o.char_sampling = CharSampling::host;
  auto host = gen.generate(bb, prompt, o);
  o.char_sampling = CharSampling::device;
  auto device = gen.generate(bb, prompt, o);
  return {std::move(host), std::move(device)};
}

// a patch whose EOS character comes before its last place: the device ran past it
bool ends_early(const Patch& p) {
  for (size_t i = 0; i + 1 < p.size(); ++i)
    if (p[i] == kEos) return true;
  return false;
}

}  // namespace

TEST_CASE("characters drawn on the device give the host's piece for each seed") {
  Checkpoint ck(tiny());
  LoadOptions lo;
  PieceGenerator gen(ck, lo);
  LocalBackbone bb(ck, lo, ck.config().max_positions);
  const std::vector<std::string> prompts = {"%Classical\n%Beethoven, Ludwig van\n%Keyboard\n",
                                            "%Romantic\n%Chopin, Frederic\n%Keyboard\nL:1/8\nK:C\n[r:0/3]abc"};
  std::vector<SamplingOptions> samplings(3);
  samplings[0].temperature = 1.2;  // NotaGen's: truncate, then temperature
  samplings[0].top_k = 9;
  samplings[0].top_p = 0.9;
  samplings[0].temperature_last = true;
  samplings[1].temperature = 0.8;  // transformers' order
  samplings[1].top_p = 0.95;
  samplings[2].temperature = 0.0;  // greedy: argmax on the device
  int early = 0;
  for (const auto& prompt : prompts)
    for (size_t si = 0; si < samplings.size(); ++si)
      for (bool full : {false, true})
        for (uint64_t seed : {1u, 2u, 3u, 4u}) {
          if (samplings[si].greedy() && seed > 1) continue;
          CAPTURE(prompt);
          CAPTURE(si);
          CAPTURE(full);
          CAPTURE(seed);
          PieceOptions o;
          o.sampling = samplings[si];
          o.sampling.seed = seed;
          o.max_patches = 24;
          o.full_patches = full;
          const auto r = both_ways(gen, bb, prompt, o);
          CHECK_FALSE(r.host.sampled_on_device);
          CHECK(r.device.sampled_on_device);
          CHECK(r.device.patches == r.host.patches);
          CHECK(r.device.text == r.host.text);
          CHECK(r.device.stop_reason == r.host.stop_reason);
          CHECK(r.device.cuts == r.host.cuts);
          for (const auto& p : r.host.patches) early += !full && ends_early(p);
        }
  MESSAGE(early << " patches ended at an EOS character before their last place");
  CHECK(early > 0);  // the case the device's discarded characters are for was met
}

TEST_CASE("on CUDA: characters drawn on the device give the host's piece (fp32 and bf16)") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  Checkpoint ck(tiny());
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    CAPTURE(dtype);
    LoadOptions lo{dtype, torch::Device(torch::kCUDA, 0)};
    PieceGenerator gen(ck, lo);
    LocalBackbone bb(ck, lo, ck.config().max_positions);
    PieceOptions o;
    o.max_patches = 24;
    o.sampling.temperature = 1.2;
    o.sampling.top_k = 9;
    o.sampling.top_p = 0.9;
    o.sampling.temperature_last = true;
    for (bool full : {false, true})
      for (uint64_t seed : {1u, 2u}) {
        CAPTURE(full);
        CAPTURE(seed);
        o.full_patches = full;
        o.sampling.seed = seed;
        const auto r = both_ways(gen, bb, "%Classical\n%Beethoven, Ludwig van\n%Keyboard\n", o);
        CHECK(r.device.patches == r.host.patches);
        CHECK(r.device.text == r.host.text);
      }
    o.max_patches = 1;
    CHECK(gen.generate(bb, "%Classical\n", o).sampled_on_device);  // CUDA: the device by default
  }
}

TEST_CASE("characters drawn on the device: the same piece through the long-piece rule's cuts") {
  Checkpoint ck(tiny());
  LoadOptions lo;
  PieceGenerator gen(ck, lo);
  LocalBackbone bb(ck, lo, ck.config().max_positions);
  std::string prompt = "%Classical\n%Keyboard\nL:1/8\nK:C\n";
  for (int i = 0; i < 30; ++i) prompt += "[r:" + std::to_string(i) + "/30]|:abcd efga|bagf:|\n";
  PieceOptions o;
  o.max_patches = 80;
  o.context = 16;
  o.sampling.temperature = 1.0;
  o.sampling.top_k = 20;
  o.sampling.seed = 3;
  for (bool full : {false, true}) {
    CAPTURE(full);
    o.full_patches = full;
    const auto r = both_ways(gen, bb, prompt, o);
    CHECK(r.host.cuts >= 1);
    CHECK(r.device.patches == r.host.patches);
    CHECK(r.device.text == r.host.text);
    CHECK(r.device.cuts == r.host.cuts);
    CHECK(r.device.stop_reason == r.host.stop_reason);
  }
}

TEST_CASE("where the characters are drawn: automatic keeps the CPU's host loop; device is refused where it cannot follow") {
  Checkpoint ck(tiny());
  LoadOptions lo;
  PieceGenerator gen(ck, lo);
  LocalBackbone bb(ck, lo, ck.config().max_positions);
  PieceOptions o;
  o.max_patches = 2;
  o.sampling.temperature = 1.0;
  CHECK_FALSE(gen.generate(bb, "%Classical\n", o).sampled_on_device);  // CPU: the host is the cheaper
  o.char_sampling = CharSampling::device;
  o.sampling.repetition_penalty = 1.2;
  CHECK_THROWS_WITH_AS(gen.generate(bb, "%Classical\n", o), doctest::Contains("repetition penalty"),
                       std::invalid_argument);
}

TEST_CASE("CharDecoder::next with the character as a device tensor runs what next(int) runs") {
  Checkpoint ck(tiny());
  LoadOptions lo;
  PieceGenerator gen(ck, lo);
  auto& dec = gen.char_decoder();
  const auto h = torch::randn({32});
  dec.begin(h);
  const auto a = dec.next(65);
  const auto b = dec.next(66);
  dec.begin(h);
  CHECK(torch::equal(dec.next(torch::tensor(int64_t{65})), a));
  CHECK(torch::equal(dec.next(torch::tensor(int64_t{66})), b));
  CHECK_THROWS_AS(dec.next(torch::tensor({66}, torch::kInt)), std::invalid_argument);  // int32: not a pick
}
