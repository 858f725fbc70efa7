// The notagen family against NotaGen's architecture built from transformers' GPT-2 classes
// (tests/fixtures/notagen: a tiny random model saved as NotaGen saves checkpoints, converted by
// scripts/notagen/convert_pth.py; golden.json recorded by make_fixtures.py, fp32 on the CPU):
// patch-level outputs and character logits within 1e-4 relative, the greedy piece identical;
// then sampling, the long-piece rule and the pieces' own checks.
#include "../common/torch_doctest.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/backbone.hpp"
#include "common/checkpoint.hpp"
#include "common/sampler.hpp"
#include "edge/notagen/piece_generator.hpp"

using namespace duet;
using namespace duet::notagen;

namespace {

std::string tiny() { return std::string(DUET_FIXTURES_DIR) + "/notagen/tiny"; }

nlohmann::json golden() {
  std::ifstream in(std::string(DUET_FIXTURES_DIR) + "/notagen/golden.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

torch::Tensor matrix(const nlohmann::json& rows) {
  std::vector<torch::Tensor> r;
  for (const auto& row : rows) r.push_back(torch::tensor(row.get<std::vector<float>>()));
  return torch::stack(r);
}

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max() / b.to(torch::kDouble).abs().max()).item<double>();
}

// the golden case's prompt patches: complete ones and the open prefix
std::vector<Patch> full_patches(const nlohmann::json& c, std::vector<int32_t>* prefix) {
  std::vector<Patch> out;
  for (const auto& p : c["patches"]) {
    auto v = p.get<std::vector<int32_t>>();
    if (v.size() == 16) out.push_back(v);
    else if (!v.empty() && v.back() == kEos) out.push_back(to_patch(std::string(v.begin(), v.end()), 16));
    else if (prefix) *prefix = v;
  }
  return out;
}

std::string prompt_of(const nlohmann::json& c) {
  std::string s;
  for (const auto& l : c["meta"]) s += l.get<std::string>();
  for (const auto& l : c["body"]) s += l.get<std::string>();
  return s;
}

PieceOptions greedy(int64_t max_patches) {
  PieceOptions o;
  o.max_patches = max_patches;
  return o;
}

}  // namespace

TEST_CASE("the tiny NotaGen folder: sizes read from the weights, family notagen") {
  Checkpoint ck(tiny());
  const auto& c = ck.config();
  CHECK(c.family == Family::notagen);
  CHECK(c.hidden_size == 32);
  CHECK(c.num_layers == 2);
  CHECK(c.max_positions == 64);
  CHECK(c.num_heads == 4);
  const auto s = Shape::of(ck);
  CHECK(s.patch_size == 16);
  CHECK(s.char_layers == 2);
  CHECK(s.char_positions == 17);
  CHECK(s.stream_markers);
  CHECK_THROWS_AS(load_lm_head(ck, LoadOptions{}), std::invalid_argument);
}

TEST_CASE("patch-level outputs and character logits match transformers (fp32, <= 1e-4 relative)") {
  torch::NoGradGuard ng;
  const auto g = golden();
  Checkpoint ck(tiny());
  LoadOptions o;
  PieceGenerator gen(ck, o);
  LocalBackbone bb(ck, o, ck.config().max_positions);
  REQUIRE(g["cases"].size() == 2);
  for (const auto& c : g["cases"]) {
    CAPTURE(c["name"].get<std::string>());
    std::vector<int32_t> prefix;
    const auto patches = full_patches(c, &prefix);
    // the C++ patch form gives the same prompt patches
    const auto enc = encode_prompt(split_piece(prompt_of(c)), 16);
    CHECK(enc.patches == patches);
    CHECK(enc.prefix == prefix);
    auto hidden = gen.patch_hidden(bb, patches, /*last_only=*/false);
    const auto want_h = matrix(c["patch_hidden"]);
    REQUIRE(hidden.sizes() == want_h.sizes());
    const double eh = rel_err(hidden, want_h);
    MESSAGE("patch hidden rel err " << eh);
    CHECK(eh <= 1e-4);
    auto raw0 = c["greedy_raw"][0].get<std::vector<int32_t>>();
    auto logits = gen.char_decoder().score(hidden[hidden.size(0) - 1], raw0);
    const auto want_l = matrix(c["char_logits_first"]);
    REQUIRE(logits.sizes() == want_l.sizes());
    const double el = rel_err(logits, want_l);
    MESSAGE("char logits rel err " << el);
    CHECK(el <= 1e-4);
  }
}

TEST_CASE("the greedy piece is transformers' (NotaGen's loop, no KV cache), early EOS stop or full patches") {
  const auto g = golden();
  Checkpoint ck(tiny());
  LoadOptions o;
  PieceGenerator gen(ck, o);
  LocalBackbone bb(ck, o, ck.config().max_positions);
  for (const auto& c : g["cases"]) {
    CAPTURE(c["name"].get<std::string>());
    const auto raw = c["greedy_raw"].get<std::vector<Patch>>();
    std::vector<int32_t> prefix;
    full_patches(c, &prefix);
    for (bool full : {false, true}) {
      CAPTURE(full);
      auto opts = greedy(static_cast<int64_t>(raw.size()));
      opts.full_patches = full;
      const auto res = gen.generate(bb, prompt_of(c), opts);
      REQUIRE(res.patches.size() == raw.size());
      for (size_t i = 0; i < raw.size(); ++i) {
        CAPTURE(i);
        if (full) CHECK(res.patches[i] == raw[i]);
        else CHECK(clean_patch(res.patches[i]) == clean_patch(raw[i]));
      }
      CHECK(std::string(prefix.begin(), prefix.end()) + res.text == c["greedy_text"].get<std::string>());
      CHECK(res.stop_reason == (is_eos_patch(raw.back()) ? "eos" : "max_patches"));
    }
  }
}

TEST_CASE("sampling: a seed gives the same piece, NotaGen's order and transformers' order both draw") {
  Checkpoint ck(tiny());
  LoadOptions o;
  PieceGenerator gen(ck, o);
  LocalBackbone bb(ck, o, ck.config().max_positions);
  const std::string prompt = "%Classical\n%Beethoven, Ludwig van\n%Keyboard\n";
  PieceOptions s;
  s.max_patches = 12;
  s.sampling.temperature = 1.2;
  s.sampling.top_k = 9;
  s.sampling.top_p = 0.9;
  s.sampling.temperature_last = true;
  s.sampling.seed = 7;
  const auto a = gen.generate(bb, prompt, s);
  const auto b = gen.generate(bb, prompt, s);
  CHECK(a.text == b.text);
  CHECK(a.patches == b.patches);
  s.sampling.seed = 8;
  const auto c = gen.generate(bb, prompt, s);
  CHECK(c.patches != a.patches);
  s.sampling.temperature_last = false;
  const auto d = gen.generate(bb, prompt, s);
  CHECK(d.patches.size() >= 1);
}

TEST_CASE("long pieces never fail: past the patch context the piece is cut and re-encoded") {
  Checkpoint ck(tiny());
  LoadOptions o;
  PieceGenerator gen(ck, o);
  LocalBackbone bb(ck, o, ck.config().max_positions);
  // a prompt with many body lines, near the context already
  std::string prompt = "%Classical\n%Keyboard\nL:1/8\nK:C\n";
  for (int i = 0; i < 30; ++i) prompt += "[r:" + std::to_string(i) + "/30]|:abcd efga|bagf:|\n";
  PieceOptions s;
  s.max_patches = 150;
  s.sampling.temperature = 1.0;
  s.sampling.seed = 3;
  for (int64_t ctx : {0, 16}) {
    CAPTURE(ctx);
    s.context = ctx;
    const auto r = gen.generate(bb, prompt, s);
    CHECK(r.cuts >= 1);
    CHECK((r.stop_reason == "max_patches" || r.stop_reason == "eos"));
    for (const auto& st : r.steps) CHECK(st.positions <= (ctx ? ctx : 64));
  }
  // a prompt far beyond the context is cut before the first patch
  std::string huge = "%Classical\nK:C\n";
  for (int i = 0; i < 400; ++i) huge += "[r:" + std::to_string(i) + "/400]|abcdefgh|\n";
  s.context = 0;
  s.max_patches = 3;
  const auto r = gen.generate(bb, huge, s);
  CHECK(r.cuts >= 1);
  CHECK(r.steps.at(0).positions < 64);
}

TEST_CASE("bad input is refused with a sentence") {
  Checkpoint ck(tiny());
  LoadOptions o;
  PieceGenerator gen(ck, o);
  LocalBackbone bb(ck, o, ck.config().max_positions);
  PieceOptions s;
  s.max_patches = 1;
  CHECK_THROWS_WITH_AS(gen.generate(bb, "%Caf\xc3\xa9\n", s), doctest::Contains("ASCII"), std::invalid_argument);
  auto& dec = gen.char_decoder();
  CHECK_THROWS_AS(dec.next(65), std::logic_error);
  auto h = torch::zeros({32});
  CHECK_THROWS_AS(dec.begin(h, std::vector<int32_t>(16, 65)), std::invalid_argument);
  CHECK_THROWS_AS(dec.begin(h, {200}), std::invalid_argument);
}

TEST_CASE("models/notagen-folk: duet's greedy pieces are transformers' (reference_greedy.json)") {
  const std::string dir = std::string(DUET_SOURCE_DIR) + "/models/notagen-folk";
  std::ifstream in(dir + "/reference_greedy.json");
  REQUIRE(in.good());
  const auto ref = nlohmann::json::parse(in);
  Checkpoint ck(dir);
  LoadOptions o;
  PieceGenerator gen(ck, o);
  LocalBackbone bb(ck, o, ck.config().max_positions);
  REQUIRE(ref["cases"].size() == 2);
  for (const auto& c : ref["cases"]) {
    const auto raw = c["greedy_raw"].get<std::vector<Patch>>();
    CAPTURE(c["prompt"].get<std::string>());
    const auto res = gen.generate(bb, c["prompt"].get<std::string>(), greedy(static_cast<int64_t>(raw.size())));
    REQUIRE(res.patches.size() == raw.size());
    for (size_t i = 0; i < raw.size(); ++i) CHECK(clean_patch(res.patches[i]) == clean_patch(raw[i]));
    CHECK(res.text == c["greedy_text"].get<std::string>());
  }
}

TEST_CASE("NotaGen's sampling order: top-k and top-p on the untempered probabilities, then p^(1/T)") {
  // probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.75 keeps 2 untempered, 3 once T = 2 flattens them first
  auto logits = torch::log(torch::tensor({0.5f, 0.3f, 0.15f, 0.05f}));
  SamplingOptions o;
  o.temperature = 2.0;
  o.top_p = 0.75;
  o.seed = 5;
  auto freq = [&](bool last) {
    o.temperature_last = last;
    Sampler s(o);
    std::vector<double> n(4, 0);
    for (int i = 0; i < 20000; ++i) n[static_cast<size_t>(s.next(logits, {}))] += 1.0 / 20000;
    return n;
  };
  const auto last = freq(true), first = freq(false);
  // kept {0, 1}: 0.5^0.5 : 0.3^0.5 = 0.5635 : 0.4365
  CHECK(last[0] == doctest::Approx(0.5635).epsilon(0.03));
  CHECK(last[1] == doctest::Approx(0.4365).epsilon(0.03));
  CHECK(last[2] == 0.0);
  CHECK(first[2] > 0.1);  // transformers' order keeps the third token
  o.temperature = 1.0;     // at T = 1 both orders are the same draw
  o.top_p = 1.0;
  o.top_k = 3;
  o.temperature_last = true;
  Sampler a(o);
  o.temperature_last = false;
  Sampler b(o);
  for (int i = 0; i < 200; ++i) CHECK(a.next(logits, {}) == b.next(logits, {}));
}
