// Edge-side pieces that need no daemon: music prompts from duet.json and the edge config file.
#include "../common/torch_doctest.hpp"

#include "edge/client/edge_config.hpp"
#include "edge/client/music_prompt.hpp"
#include "../common/model_writer.hpp"

using namespace duet::edge;

TEST_CASE("music prompt: template, defaults and unknown styles") {
  auto spec = MusicPromptSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  CHECK(spec->build("oneills-jig", "6/8", "1/8", "D") == "S:oneills-jig\nM:6/8\nL:1/8\nK:D\n");
  const std::string def = spec->build("", "", "", "");
  CHECK(def.rfind("S:" + spec->defaults.at("style") + "\n", 0) == 0);
  try {
    spec->build("polka-from-mars", "", "", "");
    FAIL("an unknown style must be refused");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("oneills-jig") != std::string::npos);  // lists the known ones
  }
  CHECK_FALSE(MusicPromptSpec::from_model_dir(std::string(DUET_FIXTURES_DIR) + "/models/gpt2").has_value());
}

TEST_CASE("edge config: paths relative to the file, unknown keys and wrong types named") {
  auto dir = duet::test::make_temp_dir("edgecfg");
  duet::test::write_text(dir + "/edge.toml", "[model]\npath = \"m\"\n[cloud]\nserver_key = \"k/s.key\"\n"
                                             "[generate]\ntemperature = 0.5\nseed = 3\n");
  auto c = EdgeConfig::from_toml_file(dir + "/edge.toml");
  CHECK(c.model_path == dir + "/m");
  CHECK(c.server_key == dir + "/k/s.key");
  CHECK(c.sampling.temperature == doctest::Approx(0.5));
  CHECK(c.sampling.seed == 3);
  CHECK(c.sampling_set);
  CHECK(c.listen == "127.0.0.1:8080");  // [serve] defaults: loopback, no key
  CHECK(c.api_key.empty());
  duet::test::write_text(dir + "/serve.toml", "[serve]\nlisten = \"0.0.0.0:9000\"\napi_key = \"k\"\n"
                                              "web_dir = \"w\"\nmax_active = 2\n");
  auto sv = EdgeConfig::from_toml_file(dir + "/serve.toml");
  CHECK(sv.listen == "0.0.0.0:9000");
  CHECK(sv.api_key == "k");
  CHECK(sv.web_dir == dir + "/w");
  CHECK(sv.max_active == 2);
  duet::test::write_text(dir + "/serve0.toml", "[serve]\nmax_active = 0\n");
  CHECK_THROWS_WITH_AS(EdgeConfig::from_toml_file(dir + "/serve0.toml"), doctest::Contains("serve.max_active"),
                       std::invalid_argument);
  duet::test::write_text(dir + "/bad.toml", "[cloud]\nservr = \"x\"\n");
  try {
    EdgeConfig::from_toml_file(dir + "/bad.toml");
    FAIL("unknown key accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("cloud.servr") != std::string::npos);
    CHECK(std::string(e.what()).find("bad.toml") != std::string::npos);
  }
  duet::test::write_text(dir + "/bad2.toml", "[generate]\nmax_new_tokens = \"many\"\n");
  CHECK_THROWS_WITH_AS(EdgeConfig::from_toml_file(dir + "/bad2.toml"),
                       doctest::Contains("generate.max_new_tokens"), std::invalid_argument);
}

#include <cmath>
#include <limits>

#include "common/sampler.hpp"
#include "edge/client/music_generation.hpp"
#include "edge/music/bar_constraint.hpp"

TEST_CASE("sampling after a mask is exact: forbidden tokens never drawn, the rest in renormalised proportion") {
  // toy distribution over 5 tokens; the processor forbids 1 and 3
  const std::vector<float> z = {1.0f, 2.0f, 0.5f, 1.5f, -0.5f};
  duet::music::BarConstraintOptions bo;
  std::vector<std::string> texts = {"A", "x", "B", "K", "c"};  // x and K are not what the constraint writes
  auto constraint = std::make_shared<duet::music::BarConstraint>(bo, texts, std::vector<int32_t>{});
  auto proc = duet::edge::bar_constraint_processor(constraint, 0);
  auto logits = torch::tensor(z);
  proc(logits, {});
  REQUIRE(std::isinf(logits[1].item<float>()));
  REQUIRE(std::isinf(logits[3].item<float>()));
  REQUIRE(logits[0].item<float>() == doctest::Approx(1.0));

  double zsum = 0;
  for (int i : {0, 2, 4}) zsum += std::exp(z[i]);
  duet::SamplingOptions so;
  so.temperature = 1.0;
  so.seed = 42;
  duet::Sampler sampler(so);
  const int n = 40000;
  std::vector<int> counts(5, 0);
  for (int i = 0; i < n; ++i) ++counts[sampler.next(logits, {})];
  REQUIRE(counts[1] == 0);
  REQUIRE(counts[3] == 0);
  for (int i : {0, 2, 4}) {
    const double p = std::exp(z[i]) / zsum;
    const double sigma = std::sqrt(n * p * (1 - p));
    CAPTURE(i);
    REQUIRE(std::abs(counts[i] - n * p) < 4.5 * sigma);  // within 4.5 standard deviations
  }
  // top-k larger than what is left, and top-p: still never a forbidden token
  so.top_k = 4;
  so.top_p = 0.99;
  duet::Sampler s2(so);
  for (int i = 0; i < 2000; ++i) {
    const int t = s2.next(logits, {});
    REQUIRE(t != 1);
    REQUIRE(t != 3);
  }
  auto all = torch::full({3}, -std::numeric_limits<float>::infinity());
  REQUIRE_THROWS_AS(duet::Sampler(so).next(all, {}), std::invalid_argument);
}
