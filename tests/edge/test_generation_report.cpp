// duet-edge generate's report, shared by its token loop and NotaGen's patch loop: the record's
// opening fields and stop reason, the tune object, the .abc writer, the loop chosen by family.
#include "../common/torch_doctest.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <unistd.h>

#include "edge/client/generation_report.hpp"
#include "edge/client/piece_client.hpp"
#include "edge/music/abc_file.hpp"

using namespace duet::edge;
namespace fs = std::filesystem;

TEST_CASE("stop reasons: NotaGen's piece loop and the token loop map to the one type") {
  CHECK(stop_reason_of("eos") == StopReason::eos);
  CHECK(stop_reason_of("max_chars") == StopReason::budget);
  CHECK(stop_reason_of("max_patches") == StopReason::budget);
  CHECK(stop_reason_of("max_new_tokens") == StopReason::budget);
  CHECK(stop_reason_of("max_positions") == StopReason::context);
  CHECK(stop_reason_of("eos", /*ended_by_rule=*/true) == StopReason::ending_rule);
  CHECK(stop_text(StopReason::ending_rule) ==
        "ending_rule: the ending rule closed it at a bar line as the token budget ran out");
  // every reason in the list the page gets (GET /api/music), each with its own name and words
  std::set<std::string> names, words;
  for (StopReason r : kStopReasons) {
    names.insert(to_string(r));
    words.insert(describe(r));
    CHECK(stop_reason_of(to_string(r)) == (r == StopReason::ending_rule ? StopReason::budget : r));
  }
  CHECK(names.size() == 6);
  CHECK(words.size() == 6);
}

TEST_CASE("record_json: the fields every --json record opens with, the API's reason names") {
  const auto j = record_json({true, "models/abc-folk", 7, "abc|", StopReason::ending_rule, 12.5});
  CHECK(j["mode"] == "local");
  CHECK(j["model"] == "models/abc-folk");
  CHECK(j["seed"] == 7);
  CHECK(j["text"] == "abc|");
  CHECK(j["stop_reason"] == "ending_rule");
  CHECK(j["finish_reason"] == "length");
  CHECK(j["load_ms"] == 12.5);
  CHECK(record_json({false, "m", 1, "", StopReason::eos, 0})["mode"] == "split");
  CHECK(record_json({false, "m", 1, "", StopReason::eos, 0})["finish_reason"] == "stop");

  auto spec = duet::music::MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  const auto o = duet::music::check_music_options(*spec, {"oneills-jig", "", "", "D"});
  const auto t = tune_json(2, "X:2\n", "Jig in D", o, o.prompt, true, 3);
  CHECK(t["index"] == 2);
  CHECK(t["style"] == "oneills-jig");
  CHECK(t["meter"] == "6/8");
  CHECK(t["unit"] == "1/8");
  CHECK(t["key"] == "D");
  CHECK(t["prompt"] == o.prompt);
  CHECK(t["bar_constraint"] == true);
  CHECK(t["relaxed_steps"] == 3);
}

TEST_CASE("write_abc_file: whole or nothing, and an error that names the file") {
  const fs::path dir = fs::temp_directory_path() / ("duet-abc-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "tunes.abc").string();
  duet::music::write_abc_file(path, "X:1\nK:D\nABc|\n");
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(ss.str() == "X:1\nK:D\nABc|\n");
  CHECK_FALSE(fs::exists(path + ".part"));
  const std::string nowhere = (dir / "missing" / "t.abc").string();
  CHECK_THROWS_WITH_AS(duet::music::write_abc_file(nowhere, "X:1\n"), doctest::Contains(nowhere.c_str()), std::runtime_error);
  CHECK_FALSE(fs::exists(nowhere));
  fs::remove_all(dir);
}

TEST_CASE("the generation loop is chosen by the model's family") {
  CHECK(is_notagen_model(std::string(DUET_SOURCE_DIR) + "/models/notagen-folk"));
  CHECK_FALSE(is_notagen_model(std::string(DUET_SOURCE_DIR) + "/models/abc-folk"));
  CHECK_THROWS_WITH_AS(is_notagen_model("/nonexistent-model"), doctest::Contains("/nonexistent-model"),
                       std::exception);
}
