// The correctness anchor: duet's pieces against transformers on tiny random models (fixtures made
// by scripts/make_golden_fixtures.py), and incremental decode against full recompute.
#include "torch_doctest.hpp"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/common/remove_tree.hpp"
#include "common/backbone.hpp"
#include "common/generator.hpp"

using namespace duet;

namespace {

const char* kModels[] = {"llama_gqa",   "qwen2_bias", "gpt2",          "rope_linear",    "rope_dynamic", "rope_llama3",
                         "rope_yarn",   "qwen3",      "phi3_longrope", "mistral_window", "gemma2",       "gemma3"};

// RoPE types whose frequencies follow the sequence length in transformers (dynamic NTK,
// longrope): past the original context its full recompute rotates every position anew, its KV
// cache (and duet, common/rope.hpp) does not. These are held to transformers' cached decoding.
bool follows_length(const std::string& name) { return name == "rope_dynamic" || name == "phi3_longrope"; }

// The fixed sequence of the incremental test, within the model's vocabulary.
std::vector<int64_t> test_ids(int64_t vocab) {
  std::vector<int64_t> ids = {1, 17, 42, 99, 5, 63, 120, 7, 88, 31, 64, 3};
  for (auto& i : ids) i %= vocab;
  return ids;
}

std::string fixture(const std::string& name) { return std::string(DUET_FIXTURES_DIR) + "/models/" + name; }

nlohmann::json golden(const std::string& name) {
  std::ifstream in(fixture(name) + "/golden.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// Full-sequence logits through the split-able pieces: embedding, all blocks, norm, head.
torch::Tensor full_logits(const Checkpoint& ck, const EdgePieces& edge, LocalBackbone& bb, const std::vector<int64_t>& ids) {
  bb.reset();
  auto hidden = edge.embedding->forward(torch::tensor(ids), 0);
  return edge.logits(bb.forward(hidden, 0, /*last_only=*/false));
}

// The gemma3 fixture as the multimodal Gemma 3 (4B and up) ships its language model: the config
// under text_config and every tensor under `prefix` instead of "model.".
std::string wrapped_gemma3(const std::string& prefix) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("duet-gemma3-wrap-" + std::to_string(::getpid()) + "-" +
                                                    std::to_string(prefix.size()));
  fs::create_directories(dir);
  std::ifstream cin(fixture("gemma3") + "/config.json");
  const auto text = nlohmann::json::parse(cin);
  nlohmann::json wrap = {{"model_type", "gemma3"}, {"architectures", {"Gemma3ForConditionalGeneration"}},
                         {"text_config", text}, {"vision_config", {{"model_type", "siglip_vision_model"}}}};
  std::ofstream(dir / "config.json") << wrap.dump();
  std::ifstream in(fixture("gemma3") + "/model.safetensors", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string file = ss.str();
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);  // little-endian header length
  auto header = nlohmann::json::parse(file.substr(8, n));
  nlohmann::json renamed;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string k = it.key();
    renamed[k.rfind("model.", 0) == 0 ? prefix + k.substr(6) : k] = it.value();
  }
  std::string h = renamed.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  const uint64_t hn = h.size();
  std::ofstream out(dir / "model.safetensors", std::ios::binary);
  out.write(reinterpret_cast<const char*>(&hn), 8);
  out << h << file.substr(8 + n);
  return dir.string();
}

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kDouble) - b.to(torch::kDouble)).norm() / b.to(torch::kDouble).norm()).item<double>();
}

}  // namespace

TEST_CASE("logits match transformers (fp32, rel err <= 1e-4)") {
  torch::NoGradGuard ng;
  for (const char* name : kModels) {
    CAPTURE(std::string(name));
    auto g = golden(name);
    Checkpoint ck(fixture(name));
    LoadOptions o;
    auto edge = EdgePieces::load(ck, o);
    LocalBackbone bb(ck, o, ck.config().max_positions);
    auto prompt = g["prompt"].get<std::vector<int64_t>>();
    auto want = torch::tensor(g["logits"].get<std::vector<std::vector<float>>>().front()).unsqueeze(0);
    std::vector<torch::Tensor> rows;
    for (auto& r : g["logits"]) rows.push_back(torch::tensor(r.get<std::vector<float>>()));
    want = torch::stack(rows);
    auto got = full_logits(ck, edge, bb, prompt);
    REQUIRE(got.sizes() == want.sizes());
    const double err = rel_err(got, want);
    MESSAGE(std::string(name) << ": relative error " << err);
    CHECK(err <= 1e-4);
  }
}

TEST_CASE("greedy continuation matches transformers exactly") {
  for (const char* name : kModels) {
    CAPTURE(std::string(name));
    auto g = golden(name);
    Checkpoint ck(fixture(name));
    LoadOptions o;
    auto edge = EdgePieces::load(ck, o);
    LocalBackbone bb(ck, o, ck.config().max_positions);
    GenerationOptions gen;
    // transformers' full recompute; for length-following RoPE its cached decoding (see above)
    auto want = (follows_length(name) ? g["cached"]["greedy"] : g["greedy"]).get<std::vector<int32_t>>();
    if (g.contains("cached") && !follows_length(name))  // the two agree where RoPE does not move
      CHECK(g["cached"]["greedy"].get<std::vector<int32_t>>() == want);
    gen.max_new_tokens = static_cast<int64_t>(want.size());  // no stop ids: the fixture ran to its budget
    auto res = generate(edge, bb, g["prompt"].get<std::vector<int32_t>>(), gen, c10::Device(c10::kCPU));
    CHECK(res.tokens == want);
    CHECK(res.stop_reason == "max_new_tokens");
    CHECK(res.steps.size() == want.size());
    CHECK(res.steps.front().positions == static_cast<int64_t>(g["prompt"].size()));
  }
}

TEST_CASE("incremental decode with the KV cache equals full recompute") {
  torch::NoGradGuard ng;
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (const char* name : kModels) {
      CAPTURE(std::string(name));
      CAPTURE(dtype);
      Checkpoint ck(fixture(name));
      LoadOptions o;
      o.dtype = dtype;
      auto edge = EdgePieces::load(ck, o);
      LocalBackbone bb(ck, o, ck.config().max_positions);
      const auto ids = test_ids(ck.config().vocab_size);
      auto full = full_logits(ck, edge, bb, ids);  // [n, vocab], one pass
      // the same sequence as a 5-token prefill, a 3-token chunk, then single positions
      bb.reset();
      std::vector<torch::Tensor> parts;
      const std::vector<std::pair<int64_t, int64_t>> chunks = {{0, 5}, {5, 3}, {8, 1}, {9, 1}, {10, 1}, {11, 1}};
      for (auto [s, n] : chunks) {
        std::vector<int64_t> sub(ids.begin() + s, ids.begin() + s + n);
        auto h = edge.embedding->forward(torch::tensor(sub), s);
        parts.push_back(edge.logits(bb.forward(h, s, false)));
      }
      auto inc = torch::cat(parts);
      const double err = rel_err(inc, full);
      MESSAGE(std::string(name) << " " << dtype << ": relative error " << err);
      // fp32: rounding only; bf16: different kernel shapes round differently, within bf16's 2^-8
      CHECK(err <= (dtype == torch::kFloat ? 1e-5 : 2e-2));
      CHECK(inc.argmax(-1).equal(full.argmax(-1)));
    }
  }
}

TEST_CASE("decode steps match transformers' cached decoding (fp32, rel err <= 1e-4)") {
  torch::NoGradGuard ng;
  int checked = 0;
  for (const char* name : kModels) {
    auto g = golden(name);
    if (!g.contains("cached")) continue;  // the first fixtures predate it
    CAPTURE(std::string(name));
    Checkpoint ck(fixture(name));
    LoadOptions o;
    auto edge = EdgePieces::load(ck, o);
    LocalBackbone bb(ck, o, ck.config().max_positions);
    auto prompt = g["prompt"].get<std::vector<int64_t>>();
    auto fed = g["cached"]["greedy"].get<std::vector<int64_t>>();  // transformers' tokens, fed back
    std::vector<torch::Tensor> want_rows, got_rows;
    for (auto& r : g["cached"]["logits"]) want_rows.push_back(torch::tensor(r.get<std::vector<float>>()));
    REQUIRE(want_rows.size() == fed.size());
    bb.reset();
    int64_t pos = static_cast<int64_t>(prompt.size());
    bb.forward(edge.embedding->forward(torch::tensor(prompt), 0), 0, true);
    for (auto id : fed) {
      got_rows.push_back(edge.logits(bb.forward(edge.embedding->forward(torch::tensor({id}), pos), pos, true))[0]);
      ++pos;
    }
    auto got = torch::stack(got_rows), want = torch::stack(want_rows);
    const double err = rel_err(got, want);
    MESSAGE(std::string(name) << ": decode steps' relative error " << err << " (transformers' own cache vs "
                              << "recompute: " << g["cached"]["rel_diff_to_recompute"].get<double>() << ")");
    CHECK(err <= 1e-4);
    CHECK(got.argmax(-1).equal(want.argmax(-1)));
    ++checked;
  }
  CHECK(checked == 9);
}

TEST_CASE("the multimodal Gemma 3 wrapper: its language model loads from either tensor layout") {
  torch::NoGradGuard ng;
  auto g = golden("gemma3");
  std::vector<torch::Tensor> rows;
  for (auto& r : g["logits"]) rows.push_back(torch::tensor(r.get<std::vector<float>>()));
  const auto want = torch::stack(rows);
  for (const std::string prefix : {"language_model.model.", "model.language_model."}) {
    CAPTURE(prefix);
    const std::string dir = wrapped_gemma3(prefix);
    Checkpoint ck(dir);
    CHECK(ck.config().model_type == "gemma3");
    CHECK(ck.config().family == Family::gemma);
    LoadOptions o;
    auto edge = EdgePieces::load(ck, o);
    LocalBackbone bb(ck, o, ck.config().max_positions);
    CHECK(rel_err(full_logits(ck, edge, bb, g["prompt"].get<std::vector<int64_t>>()), want) <= 1e-4);
    duet::test::remove_tree(dir);
  }
}

TEST_CASE("a forward may rewrite positions already in the cache") {
  torch::NoGradGuard ng;
  Checkpoint ck(fixture("llama_gqa"));
  LoadOptions o;
  auto edge = EdgePieces::load(ck, o);
  LocalBackbone bb(ck, o, 64);
  auto run = [&](const std::vector<int64_t>& ids, int64_t start) {
    return edge.logits(bb.forward(edge.embedding->forward(torch::tensor(ids), start), start, true));
  };
  bb.reset();
  run({1, 2, 3, 4}, 0);
  run({9}, 4);                  // a token later rejected
  auto again = run({7}, 4);     // replace position 4
  bb.reset();
  run({1, 2, 3, 4}, 0);
  auto direct = run({7}, 4);
  CHECK(again.equal(direct));
}
