// The duet-edge command line against a real daemon: --json output, split == --local, music
// prompts, and the exit code and sentence of a failure.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace duet::itest;
using nlohmann::json;

namespace {

std::vector<std::string> edge_args(const std::string& model, const std::string& endpoint,
                                   const std::vector<std::string>& extra) {
  const auto& k = keys();
  std::vector<std::string> a = {"generate", "--model", model, "--json"};
  if (endpoint.empty()) {
    a.push_back("--local");
  } else {
    a.insert(a.end(), {"--server", endpoint, "--server-key", k.server_public.string(), "--client-key",
                       k.edge_secret.string()});
  }
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

json run_json(const std::vector<std::string>& args) {
  auto r = run_process(edge_binary(), args);
  INFO("duet-edge stdout: " << r.out);
  INFO("duet-edge stderr: " << r.err);
  REQUIRE(r.status == 0);
  json j;
  REQUIRE_NOTHROW(j = json::parse(r.out));
  return j;
}

}  // namespace

TEST_CASE("duet-edge generate --json: parses, has tokens and steps, and --local gives the same tokens") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--devices", "cpu,cpu"}));
  INFO(d.log());
  for (const std::vector<std::string>& sampling :
       {std::vector<std::string>{}, std::vector<std::string>{"--temperature", "0.9", "--top-k", "20", "--top-p",
                                                              "0.9", "--seed", "5"}}) {
    std::vector<std::string> extra = {"--prompt-ids", "1,17,42", "-n", "16"};
    extra.insert(extra.end(), sampling.begin(), sampling.end());
    CAPTURE(sampling.size());
    const json split = run_json(edge_args(model, d.endpoint(), extra));
    const json local = run_json(edge_args(model, "", extra));
    CHECK(split["mode"] == "split");
    CHECK(local["mode"] == "local");
    CHECK(split["prompt_ids"] == json::array({1, 17, 42}));
    REQUIRE(split["tokens"].is_array());
    REQUIRE(split["steps"].is_array());
    const auto tokens = split["tokens"].get<std::vector<int>>();
    CHECK_FALSE(tokens.empty());
    CHECK(tokens.size() <= 16);
    CHECK(split["steps"].size() == tokens.size());
    CHECK(split["steps"][0]["positions"] == 3);  // the prefill
    CHECK(split["steps"][0]["cloud_ms"].get<double>() >= 0);
    CHECK(split["steps"][0]["round_trip_ms"].get<double>() > 0);
    CHECK(split["resumes"] == 0);
    const std::string why = split["stop_reason"].get<std::string>();
    CHECK((why == "eos" || why == "max_new_tokens"));
    if (why == "max_new_tokens") CHECK(tokens.size() == 16);
    CHECK(split["tokens"] == local["tokens"]);
    CHECK(split["stop_reason"] == local["stop_reason"]);
  }
  CHECK(d.stop() == 0);
}

TEST_CASE("duet-edge on abc-folk: a --style/--meter/--key prompt, split == --local, text decoded") {
  const std::string model = abc_model();
  DaemonProcess d(secure_args(model, {"--devices", "cpu,cpu"}));
  INFO(d.log());
  const std::vector<std::string> extra = {"--style", "oneills-jig", "--meter", "6/8", "--key", "D", "-n", "24"};
  const json split = run_json(edge_args(model, d.endpoint(), extra));
  const json local = run_json(edge_args(model, "", extra));
  CHECK(split["tokens"] == local["tokens"]);  // duet.json's sampling, seed 0: deterministic
  CHECK(split["text"] == local["text"]);
  CHECK_FALSE(split["text"].get<std::string>().empty());
  // the prompt is <s> + "S:oneills-jig\nM:6/8\nL:1/8\nK:D\n", one id per character
  CHECK(split["prompt_ids"].size() == 1 + std::string("S:oneills-jig\nM:6/8\nL:1/8\nK:D\n").size());
  CHECK(d.stop() == 0);
}

TEST_CASE("duet-edge exits 2 with a sentence when no daemon listens") {
  const std::string ep = "tcp://127.0.0.1:" + std::to_string(closed_port());
  auto r = run_process(edge_binary(), edge_args(fixture_model("llama_gqa"), ep,
                                                {"--prompt-ids", "1,2,3", "-n", "4", "--timeout-ms", "1000"}));
  INFO(r.err);
  CHECK(r.status == 2);
  CHECK(r.err.find("no duet-cloud daemon reachable at " + ep) != std::string::npos);
  CHECK(r.out.empty());
}
