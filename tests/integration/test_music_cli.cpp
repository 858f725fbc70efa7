// duet-edge on the bundled music model, monolithic (--local, no daemon): refused options with a
// sentence, greedy constrained tunes with every bar right on several styles (checked by
// scripts/abc/evaluate.py --bars), --count, --continue, seeds and titles in the output.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace duet::itest;
using nlohmann::json;

namespace {

ProcessResult edge(std::vector<std::string> extra) {
  std::vector<std::string> a = {"generate", "--model", abc_model(), "--local", "--no-stream"};
  a.insert(a.end(), extra.begin(), extra.end());
  return run_process(edge_binary(), a, std::chrono::seconds(120));
}

json bars_of(const fs::path& abc) {
  auto r = run_process("/usr/bin/python3", {source_path("scripts/abc/evaluate.py"), "--bars", abc.string()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  return json::parse(r.out);
}

}  // namespace

TEST_CASE("duet-edge refuses invalid music options with a sentence, before loading anything") {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--key", "H"}, "key 'H'"},
      {{"--key", "D\nX:2"}, "key 'D\\nX:2'"},
      {{"--meter", "7/x"}, "meter '7/x' is not an ABC meter"},
      {{"--unit", "1/3"}, "unit '1/3' is not a note value"},
      {{"--style", "polka-from-mars"}, "unknown style 'polka-from-mars'"},
      {{"--temperature", "-1"}, "--temperature"},
      {{"--seed", "-3"}, "--seed"},
      {{"-n", "-5"}, "--max-new-tokens"},
      {{"-n", "0"}, "--max-new-tokens"},
      {{"--count", "0"}, "--count"},
      {{"--prompt", "X:1", "--style", "oneills-jig"}, "leave out --prompt"},
  };
  for (const auto& c : cases) {
    auto r = edge(c.args);
    CAPTURE(c.args[0]);
    INFO(r.err);
    CHECK(r.status != 0);
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK(r.out.empty());
  }
  auto warn = edge({"--style", "oneills-jig", "--meter", "7/4", "-n", "8", "--seed", "1"});
  CHECK(warn.status == 0);
  CHECK(warn.err.find("warning: meter 7/4 was never in this model's training data") != std::string::npos);
}

TEST_CASE("greedy constrained tunes have every bar right on several styles; a bare run too") {
  TempDir dir("duet-music");
  const std::vector<std::vector<std::string>> styles = {
      {},  // the model's defaults
      {"--style", "oneills-jig", "--key", "D"},
      {"--style", "ryans-hornpipe", "--meter", "2/4", "--unit", "1/16"},
      {"--style", "nottingham-waltz"},
      {"--style", "oneills-reel", "--meter", "2/2", "--unit", "1/8", "--key", "Ador"}};
  int i = 0;
  for (auto args : styles) {
    const fs::path out = dir / ("t" + std::to_string(i++) + ".abc");
    // the model's own budget: with less, the ending push lands a tune of 30 tokens a bar within ~8 bars
    args.insert(args.end(), {"--temperature", "0", "-n", "768", "--abc-out", out.string()});
    auto r = edge(args);
    CAPTURE(i);
    INFO(r.err);
    REQUIRE(r.status == 0);
    const json b = bars_of(out);
    REQUIRE(b.size() == 1);
    INFO(read_file(out));
    CHECK(b[0]["checked"].get<int>() >= 6);
    CHECK(b[0]["good"] == b[0]["checked"]);
    CHECK(b[0]["longest_identical_run"].get<int>() <= 3);
  }
}

TEST_CASE("duet-edge --count, seeds, titles and --continue") {
  TempDir dir("duet-music");
  const fs::path out = dir / "two.abc";
  auto r = edge({"--style", "oneills-jig", "--count", "2", "--seed", "5", "-n", "60", "--abc-out", out.string(),
                 "--title", "Test Jig"});
  INFO(r.err);
  REQUIRE(r.status == 0);
  const std::string abc = read_file(out);
  CHECK(abc.find("X:1\nT:Test Jig\nQ:3/8=") == 0);
  CHECK(abc.find("% duet-edge: seed 5, bar constraint on") != std::string::npos);
  CHECK(abc.find("X:2\nT:Test Jig\n") != std::string::npos);
  CHECK(abc.find("% duet-edge: seed 6,") != std::string::npos);
  CHECK(r.err.find("seed 5") != std::string::npos);
  // 60 tokens end no jig: the ending push ends each at a bar line, bars right, with a warning
  CHECK(r.err.find("was ended at a bar line because the token budget") != std::string::npos);
  CHECK(r.err.find("used the whole token budget") == std::string::npos);
  CHECK_FALSE(fs::exists(out.string() + ".part"));
  const json two = bars_of(out);
  INFO(two.dump());
  REQUIRE(two.size() == 2);
  for (const auto& t : two) CHECK(t["good"] == t["checked"]);
  // without it, the budget cuts the tune where it runs out
  auto cut = edge({"--style", "oneills-jig", "--seed", "5", "-n", "60", "--no-ending-push", "--json"});
  INFO(cut.err);
  REQUIRE(cut.status == 0);
  CHECK(cut.err.find("used the whole token budget") != std::string::npos);
  CHECK(json::parse(cut.out)["stop_reason"] == "max_new_tokens");
  CHECK(json::parse(cut.out)["finish_reason"] == "length");
  CHECK(json::parse(cut.out)["tune"]["ended_by_budget"] == false);
  // with the push: the record gives the same reason as the summary line and the API (was "eos")
  auto pushed = edge({"--style", "oneills-jig", "--seed", "5", "-n", "60", "--json"});
  INFO(pushed.err);
  REQUIRE(pushed.status == 0);
  CHECK(json::parse(pushed.out)["tune"]["ended_by_budget"] == true);
  CHECK(json::parse(pushed.out)["stop_reason"] == "ending_rule");
  CHECK(json::parse(pushed.out)["finish_reason"] == "length");
  auto pushed_line = edge({"--style", "oneills-jig", "--seed", "5", "-n", "60", "--no-stream"});
  CHECK(pushed_line.err.find("(ending_rule: the ending rule closed it") != std::string::npos);
  // --ignore-eos (benchmarks): no end token, so nothing to push towards; the budget is used whole
  auto all = edge({"--style", "oneills-jig", "--seed", "5", "-n", "90", "--ignore-eos", "--json"});
  INFO(all.err);
  REQUIRE(all.status == 0);
  CHECK(json::parse(all.out)["tokens"].size() == 90);

  // continue an opening: the file's header decides meter, unit and key; the opening is kept
  const fs::path open = dir / "open.abc";
  {
    std::ofstream f(open);
    f << "X:1\nT:My Opening\nM:6/8\nL:1/8\nK:G\nD|G2B d2B|c2A B2G|\n";
  }
  auto c = edge({"--continue", open.string(), "--seed", "3", "-n", "200", "--abc-out", (dir / "c.abc").string()});
  INFO(c.err);
  REQUIRE(c.status == 0);
  const std::string cont = read_file(dir / "c.abc");
  CHECK(cont.find("T:My Opening\n") != std::string::npos);
  CHECK(cont.find("M:6/8\nL:1/8\nK:G\nD|G2B d2B|c2A B2G|\n") != std::string::npos);
  auto clash = edge({"--continue", open.string(), "--meter", "3/4"});
  CHECK(clash.status == 1);
  CHECK(clash.err.find("disagrees with") != std::string::npos);
}
