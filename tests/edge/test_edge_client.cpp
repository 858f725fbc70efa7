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
