// NotaGen split at the patch level across a real daemon: the edge keeps the patch embedding, the
// final norm and the character decoder, the daemon runs the patch-level blocks (1 and 2 stages);
// the pieces equal the monolithic ones (greedy, sampled, and through the long-piece rule's cuts),
// one round trip per patch. Then duet-edge generate on the NotaGen folder, local and split: its
// GenerationJob (edge/generation) writes the piece loop's own piece, with a token model's stop reasons.
#include "../common/torch_doctest.hpp"

#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "common/backbone.hpp"
#include "common/checkpoint.hpp"
#include "common/wire/tensor_frames.hpp"
#include "edge/client/cloud_connection.hpp"
#include "edge/client/edge_client.hpp"
#include "edge/client/generation_report.hpp"
#include "edge/client/remote_backbone.hpp"
#include "edge/client/stop_reason.hpp"
#include "edge/notagen/piece_generator.hpp"
#include "edge_helpers.hpp"

using namespace duet;
using namespace duet::itest;

namespace {

std::string tiny() { return source_path("tests/fixtures/notagen/tiny"); }

const std::string kPromptText = "%Classical\n%Beethoven, Ludwig van\n%Keyboard\n";

struct Run {
  std::string text;
  std::vector<notagen::Patch> patches;
  int cuts = 0;
  size_t steps = 0;
};

Run piece(Backbone& bb, const notagen::PieceOptions& o) {
  Checkpoint ck(tiny());
  notagen::PieceGenerator gen(ck, LoadOptions{});
  auto r = gen.generate(bb, kPromptText, o);
  return {r.text, r.patches, r.cuts, r.steps.size()};
}

std::vector<notagen::PieceOptions> cases() {
  notagen::PieceOptions greedy;
  greedy.max_patches = 20;
  notagen::PieceOptions sampled = greedy;
  sampled.sampling.temperature = 1.2;
  sampled.sampling.top_k = 9;
  sampled.sampling.top_p = 0.9;
  sampled.sampling.temperature_last = true;
  sampled.sampling.seed = 11;
  notagen::PieceOptions cut = sampled;  // the long-piece rule: context 12 patches
  cut.max_patches = 40;
  cut.context = 12;
  return {greedy, sampled, cut};
}

}  // namespace

TEST_CASE("notagen: split == monolithic over 1 and 2 stages, one round trip per patch") {
  Checkpoint ck(tiny());
  std::vector<Run> want;
  for (const auto& o : cases()) {
    LocalBackbone bb(ck, LoadOptions{}, ck.config().max_positions);
    want.push_back(piece(bb, o));
  }
  REQUIRE(want[2].cuts >= 1);
  REQUIRE(want[0].text != want[1].text);
  for (const std::vector<std::string>& layout : {std::vector<std::string>{"--devices", "cpu"},
                                                 std::vector<std::string>{"--plan", "cpu=0-0,cpu=1-1"}}) {
    CAPTURE(layout[1]);
    DaemonProcess d(secure_args(tiny(), layout));
    edge::CloudConnection conn(edge::connection_options(split_config(tiny(), d.endpoint())), fingerprint_of(tiny()));
    const auto cs = cases();
    for (size_t i = 0; i < cs.size(); ++i) {
      CAPTURE(i);
      edge::RemoteBackbone bb(conn, conn.server().limits.max_positions_per_session);
      const Run got = piece(bb, cs[i]);
      CHECK(got.text == want[i].text);
      CHECK(got.patches == want[i].patches);
      CHECK(got.cuts == want[i].cuts);
      CHECK(got.steps == got.patches.size());  // one backbone call (round trip) per patch
    }
  }
}

TEST_CASE("duet-edge generate on a NotaGen folder: local and split give the same piece, ABC out") {
  TempDir tmp;
  std::vector<std::string> base = {"generate", "--model", tiny(), "--max-patches", "12", "--seed", "5", "--json"};
  auto local = base;
  local.insert(local.end(), {"--local", "--abc-out", (tmp / "piece.abc").string()});
  auto l = run_process(edge_binary(), local, std::chrono::seconds(60));
  INFO(l.err);
  REQUIRE(l.status == 0);
  auto jl = nlohmann::json::parse(l.out);
  CHECK(jl["mode"] == "local");
  // the stop reason every front end gives (stop_reason.hpp), not the piece loop's own words
  const std::string why = jl["stop_reason"].get<std::string>();
  CHECK((why == "eos" || why == "max_new_tokens"));  // was "max_patches" for a piece the limit cut
  CHECK(jl["finish_reason"] == (why == "eos" ? "stop" : "length"));
  CHECK(jl["patches"].get<int>() >= 1);
  CHECK(jl["prompt"] == kPromptText);  // the duet.json defaults: Classical, Beethoven, Keyboard
  {
    // the piece loop's own piece for seed 5 (what the CLI's NotaGen path ran before the job):
    // duet.json's sampling (top-k 9, top-p 0.9, then temperature 1.2), 12 patches
    Checkpoint ck(tiny());
    notagen::PieceGenerator gen(ck, LoadOptions{});
    LocalBackbone bb(ck, LoadOptions{}, ck.config().max_positions);
    notagen::PieceOptions po;
    // temperature, top-k, top-p, no repetition penalty, the seed, temperature last (NotaGen's order)
    po.sampling = {1.2, 9, 0.9, 1.0, 5, true};
    po.max_patches = 12;
    const auto want = gen.generate(bb, kPromptText, po);
    CHECK(jl["text"] == want.text);
    CHECK(jl["stop_reason"] == edge::to_string(edge::stop_reason_of(want.stop_reason)));
    CHECK(jl["patches"] == want.patches.size());
    CHECK(jl["steps"].size() == want.steps.size());
  }
  const std::string abc = read_file(tmp / "piece.abc");
  CHECK(abc.rfind("X:1\nT:", 0) == 0);
  CHECK(abc.find("%Beethoven, Ludwig van\n") != std::string::npos);

  DaemonProcess d(secure_args(tiny(), {"--devices", "cpu"}));
  auto split = base;
  split.insert(split.end(), {"--server", d.endpoint(), "--server-key", keys().server_public.string(), "--client-key",
                             keys().edge_secret.string()});
  auto s = run_process(edge_binary(), split, std::chrono::seconds(60));
  INFO(s.err);
  REQUIRE(s.status == 0);
  auto js = nlohmann::json::parse(s.out);
  CHECK(js["mode"] == "split");
  CHECK(js["text"] == jl["text"]);
  CHECK(js["stop_reason"] == jl["stop_reason"]);
  CHECK(js["patches"] == jl["patches"]);

  // --continue: the file's tune goes on; the stream markers stay out of the .abc and the printout
  {
    std::ofstream f(tmp / "opening.abc");
    f << "X:1\nT:Opening\n%Romantic\n%Chopin, Frederic\n%Keyboard\nL:1/8\nM:3/4\nK:Ab\n"
         "[r:0/1]|:ABcd efga|bagf edcB:|\n[r:1/0]|:c2";
  }
  auto c = run_process(edge_binary(), {"generate", "--model", tiny(), "--local", "--continue", (tmp / "opening.abc").string(),
                                       "--max-patches", "3", "--abc-out", (tmp / "cont.abc").string()});
  INFO(c.err);
  REQUIRE(c.status == 0);
  const std::string cont = read_file(tmp / "cont.abc");
  CHECK(cont.rfind("X:1\nT:Opening (duet seed", 0) == 0);
  CHECK(cont.find("K:Ab\n|:ABcd efga|bagf edcB:|\n|:c2") != std::string::npos);
  CHECK(cont.find("[r:") == std::string::npos);
  CHECK(c.out.find("[r:") == std::string::npos);

  // options a NotaGen model refuses, with a sentence
  auto bad = run_process(edge_binary(), {"generate", "--model", tiny(), "--local", "--prompt-ids", "1,2"});
  CHECK(bad.status == 1);
  CHECK(bad.err.find("text prompts") != std::string::npos);
  // the edge's first blocks (a daemon at --first-block K) are not run by the piece loop: refused
  // before any daemon is contacted (nothing listens on port 1)
  auto bad_blocks = run_process(edge_binary(), {"generate", "--model", tiny(), "--server", "tcp://127.0.0.1:1",
                                                "--insecure", "--edge-blocks", "1", "--max-patches", "2"});
  CHECK(bad_blocks.status == 1);
  CHECK(bad_blocks.err.find("--edge-blocks 1: NotaGen models keep every block on the daemon") != std::string::npos);
  auto bad2 = run_process(edge_binary(), {"generate", "--model", tiny(), "--local", "--period", "Caf\xc3\xa9"});
  CHECK(bad2.status == 1);
  CHECK(bad2.err.find("ASCII") != std::string::npos);
  auto warn = run_process(edge_binary(), {"generate", "--model", tiny(), "--local", "--style", "oneills-jig",
                                          "--max-patches", "2", "--no-stream"});
  CHECK(warn.status == 0);
  CHECK(warn.err.find("style, meter, unit and key are ignored") != std::string::npos);
  // the summary line gives the budget as a token model's does; --no-stream prints the piece at the end
  CHECK(warn.err.find(" in 2 patches (" + edge::stop_text(edge::StopReason::budget) + ")") != std::string::npos);
  CHECK(warn.out.rfind("X:1\nT:Classical, Beethoven, Ludwig van, Keyboard (duet seed 0)\n", 0) == 0);
  auto bad3 = run_process(edge_binary(), {"generate", "--model", abc_model(), "--local", "--period", "Classical"});
  CHECK(bad3.status == 1);
  CHECK(bad3.err.find("NotaGen models") != std::string::npos);
}

TEST_CASE("notagen-folk through duet-edge: the bar constraint per character keeps every bar right") {
  TempDir tmp;
  for (const char* style : {"oneills-jig", "nottingham-reel", "ryans-hornpipe"}) {
    CAPTURE(std::string(style));
    const auto abc = (tmp / (std::string(style) + ".abc")).string();
    auto r = run_process(edge_binary(), {"generate", "--model", source_path("models/notagen-folk"), "--local", "--style",
                                         style, "--seed", "3", "--count", "2", "--abc-out", abc, "--json"},
                         std::chrono::seconds(120));
    INFO(r.err);
    REQUIRE(r.status == 0);
    // the model ended each tune: "eos" and finish_reason "stop", as for a token model
    std::istringstream records(r.out);
    int n = 0;
    for (std::string line; std::getline(records, line); ++n) {
      const auto rec = nlohmann::json::parse(line);
      CHECK(rec["stop_reason"] == "eos");
      CHECK(rec["finish_reason"] == "stop");
      CHECK(rec["tune"]["bar_constraint"] == true);
    }
    CHECK(n == 2);
    auto bars = run_process("/usr/bin/python3", {source_path("scripts/abc/evaluate.py"), "--bars", abc});
    INFO(bars.err);
    REQUIRE(bars.status == 0);
    auto tunes = nlohmann::json::parse(bars.out);
    REQUIRE(tunes.size() == 2);
    for (const auto& t : tunes) {
      CHECK(t["checked"].get<int>() >= 4);
      CHECK(t["good"] == t["checked"]);
      CHECK(t["unparsed"].get<int>() == 0);
    }
    CHECK(read_file(abc).find("bar constraint on") != std::string::npos);
  }
}
