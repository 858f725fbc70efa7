// The bundled music model (models/abc-folk) against transformers: its own tokenizer gives the
// reference prompt ids, and duet's runtime gives the reference greedy continuation (fp32 compute
// on the fp16 checkpoint, as the reference was made).
#include "torch_doctest.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/backbone.hpp"
#include "common/generator.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace duet;

TEST_CASE("abc-folk: tokenizer and greedy tune match transformers") {
  const std::string dir = std::string(DUET_SOURCE_DIR) + "/models/abc-folk";
  std::ifstream in(dir + "/reference_greedy.json");
  REQUIRE(in.good());
  auto ref = nlohmann::json::parse(in);
  REQUIRE(ref["cases"].size() >= 1);

  auto tok = duet::tokenizer::Tokenizer::from_file(dir + "/tokenizer.json");
  Checkpoint ck(dir);
  LoadOptions o;  // fp32
  auto edge = EdgePieces::load(ck, o);
  LocalBackbone bb(ck, o, ck.config().max_positions);
  for (const auto& c : ref["cases"]) {
    const auto prompt = c["prompt"].get<std::string>();
    CAPTURE(prompt);
    const auto want_prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    CHECK(tok.encode(prompt, true) == want_prompt);
    GenerationOptions g;
    g.max_new_tokens = ref["new_tokens"].get<int64_t>();  // the reference does not stop at </s>
    auto res = generate(edge, bb, want_prompt, g, c10::Device(c10::kCPU));
    const auto want = c["greedy_ids"].get<std::vector<int32_t>>();
    CHECK(res.tokens == want);
    if (c.contains("greedy_text")) CHECK(tok.decode(res.tokens, false) == c["greedy_text"].get<std::string>());
  }
}
