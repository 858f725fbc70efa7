// Per-hop telemetry in a real daemon + edge run: every round of `duet-edge generate --json` has
// the daemon's queue wait and per-stage compute, the edge's embed/head/sample, and the link's
// share; the parts are sane and add up; a 10 ms relay (each way) shows up in uplink_downlink and
// not in the daemon's time. No LibTorch here.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness.hpp"

using namespace duet::itest;
using nlohmann::json;

namespace {

std::string relay_binary() { return std::string(DUET_BINARY_DIR) + "/tools/duet-relay"; }

std::string port_of(const std::string& endpoint) { return endpoint.substr(endpoint.rfind(':') + 1); }

// duet-relay on loopback in front of `endpoint`; returns its endpoint once it listens.
std::string start_relay(ChildProcess& relay) {
  for (int i = 0; i < 300; ++i) {
    const std::string out = relay.out();
    const auto at = out.find("listening on 127.0.0.1:");
    if (at != std::string::npos) {
      const auto start = at + std::string("listening on ").size();
      return "tcp://" + out.substr(start, out.find(' ', start) - start);
    }
    REQUIRE_MESSAGE(relay.running(), "duet-relay exited: " << relay.err());
    std::this_thread::sleep_for(10ms);
  }
  FAIL("duet-relay did not print its listening line: " << relay.out() << relay.err());
  return {};
}

json generate(const std::string& model, const std::string& endpoint, int n) {
  const auto& k = keys();
  std::vector<std::string> a = {"generate", "--model", model, "--json", "--prompt-ids", "1,17,42", "-n",
                                std::to_string(n), "--ignore-eos"};
  if (endpoint.empty()) a.push_back("--local");
  else
    a.insert(a.end(), {"--server", endpoint, "--server-key", k.server_public.string(), "--client-key",
                       k.edge_secret.string()});
  auto r = run_process(edge_binary(), a);
  INFO("duet-edge stderr: " << r.err);
  REQUIRE(r.status == 0);
  json j;
  REQUIRE_NOTHROW(j = json::parse(r.out));
  return j;
}

double median_of(const json& steps, const char* key) {
  std::vector<double> v;
  for (size_t i = 1; i < steps.size(); ++i) v.push_back(steps[i][key].get<double>());  // decode rounds
  std::sort(v.begin(), v.end());
  return v.at(v.size() / 2);
}

// Each round's parts: present, non-negative, nested the way the protocol says.
void check_rounds(const json& steps, size_t stages, double min_link_ms) {
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    CAPTURE(i);
    CAPTURE(s.dump());
    CHECK(s["tokens"] == 1);
    CHECK(s["forwards"] == 1);
    for (const char* k : {"embed_ms", "head_ms", "sample_ms", "queue_ms", "daemon_ms", "request_ms"})
      CHECK(s[k].get<double>() >= 0);
    CHECK(s["edge_ms"].get<double>() ==
          doctest::Approx(s["embed_ms"].get<double>() + s["head_ms"].get<double>() + s["sample_ms"].get<double>()));
    REQUIRE(s["stage_ms"].size() == stages);
    double parts = s["queue_ms"].get<double>();
    for (const auto& st : s["stage_ms"]) {
      CHECK(st.get<double>() >= 0);
      parts += st.get<double>();
    }
    CHECK(s["stage_ms"][0].get<double>() > 0);  // the blocks did run
    CHECK(parts <= s["daemon_ms"].get<double>() + 1e-9);
    CHECK(s["daemon_ms"] == s["cloud_ms"]);
    CHECK(s["request_ms"].get<double>() >= s["daemon_ms"].get<double>());
    CHECK(s["round_trip_ms"].get<double>() >= s["request_ms"].get<double>());
    CHECK(s["uplink_downlink_ms"].get<double>() ==
          doctest::Approx(s["request_ms"].get<double>() - s["daemon_ms"].get<double>()));
    CHECK(s["uplink_downlink_ms"].get<double>() >= min_link_ms);
  }
}

// The summary's per-token parts add up to its total, and tok/s follows from it.
void check_summary(const json& j, int n, bool remote) {
  const json& s = j["summary"];
  CAPTURE(s.dump());
  CHECK(s["prefill"]["positions"] == 3);
  CHECK(s["decode_rounds"] == n - 1);
  CHECK(s["decode_tokens"] == n - 1);
  CHECK(s["tokens_per_round"].get<double>() == 1.0);
  CHECK(s["decode_tok_s"].get<double>() ==
        doctest::Approx(1000.0 * (n - 1) / s["decode_ms"].get<double>()));
  const json& p = s["per_token_ms"];
  double sum = 0;
  for (const char* k : {"embed", "head", "sample"}) sum += p[k].get<double>();
  if (remote) {
    for (const char* k : {"edge_codec", "uplink_downlink", "queue", "stages", "daemon_other"}) sum += p[k].get<double>();
    double stages = 0;
    for (const auto& st : p["stage"]) stages += st.get<double>();
    CHECK(stages == doctest::Approx(p["stages"].get<double>()));
  } else {
    for (const char* k : {"edge_codec", "uplink_downlink", "queue", "stages", "daemon_other"}) CHECK(p[k].is_null());
    CHECK(p["stage"].empty());
    sum = p["total"].get<double>();  // local: the backbone's own time is not split
  }
  CHECK(sum == doctest::Approx(p["total"].get<double>()).epsilon(1e-9));
  CHECK(p["total"].get<double>() * (n - 1) == doctest::Approx(s["decode_ms"].get<double>()));
}

}  // namespace

TEST_CASE("per-hop telemetry: two stages, direct and through a 10 ms relay") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--devices", "cpu,cpu"}));
  INFO(d.log());
  REQUIRE(stage_count(d.log()) == 2);
  const int n = 12;

  const json direct = generate(model, d.endpoint(), n);
  check_rounds(direct["steps"], 2, 0.0);
  check_summary(direct, n, true);

  ChildProcess relay(relay_binary(), {"--listen", "127.0.0.1:0", "--connect", "127.0.0.1:" + port_of(d.endpoint()),
                                      "--delay-ms", "10"});
  const std::string via = start_relay(relay);
  const json delayed = generate(model, via, n);
  INFO("relay: " << relay.out() << relay.err());
  check_rounds(delayed["steps"], 2, 20.0);  // 10 ms each way at least, every round
  check_summary(delayed, n, true);
  CHECK(delayed["tokens"] == direct["tokens"]);
  // the 20 ms land in the link's share, not in the daemon's
  const double added = median_of(delayed["steps"], "uplink_downlink_ms") - median_of(direct["steps"], "uplink_downlink_ms");
  CHECK(added >= 18.0);
  CHECK(added <= 26.0);
  CHECK(median_of(delayed["steps"], "daemon_ms") < median_of(direct["steps"], "daemon_ms") + 5.0);
  CHECK(d.stop() == 0);
}

TEST_CASE("per-hop telemetry with --local: the link and daemon parts are null, not made up") {
  const std::string model = fixture_model("llama_gqa");
  const json local = generate(model, "", 6);
  for (const auto& s : local["steps"]) {
    CHECK(s["request_ms"].is_null());
    CHECK(s["uplink_downlink_ms"].is_null());
    CHECK(s["queue_ms"].is_null());
    CHECK(s["stage_ms"].empty());
    CHECK(s["round_trip_ms"].get<double>() > 0);
  }
  check_summary(local, 6, false);
}
