// The daemon as a shared server: many edges at once run in batched steps and each gets exactly
// the tokens it gets alone; a client sending junk and clients killed with SIGKILL change nobody's
// tokens and leave no KV block behind; the operator's metrics reach a real Prometheus.
#include "../common/torch_doctest.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

#include "edge/client/edge_client.hpp"
#include "edge_helpers.hpp"
#include "protocol/curve.hpp"

using namespace duet;
using namespace duet::itest;

namespace {


struct Job {
  std::vector<int32_t> prompt;
  GenerationOptions opts;
  int delay_ms = 0;
  std::vector<int32_t> want, got;
  std::string error;
};

// Runs every job on its own thread and edge (its own connection and session), started after its delay.
void run_concurrently(const std::string& model, const std::string& endpoint, std::vector<Job>& jobs) {
  for (auto& j : jobs) j.want = local_tokens(model, j.prompt, j.opts);
  std::vector<std::thread> ts;
  for (auto& j : jobs)
    ts.emplace_back([&, jp = &j] {
      std::this_thread::sleep_for(std::chrono::milliseconds(jp->delay_ms));
      try {
        jp->got = split_tokens(split_config(model, endpoint, 20000), jp->prompt, jp->opts);
      } catch (const std::exception& e) {
        jp->error = e.what();
      }
    });
  for (auto& t : ts) t.join();
}

std::vector<Job> mixed_jobs(int n) {
  std::vector<Job> jobs(n);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k <= i * 7 % 19; ++k) jobs[i].prompt.push_back(1 + (i * 31 + k * 17) % 80);  // 1..19 positions, ids any fixture knows
    jobs[i].opts = i % 2 ? fixed_options(12 + i % 5, sampled(100 + i)) : fixed_options(16 + i % 3);
    jobs[i].delay_ms = (i % 4) * 15;  // sessions join while others are mid-stream
  }
  return jobs;
}

}  // namespace

TEST_CASE("concurrent sessions run in batched steps and each gets its tokens alone, over 1, 2 and 3 stages") {
  for (const std::string name : {"llama_gqa", "gpt2"}) {
    const std::string model = fixture_model(name);
    for (const char* devices : {"cpu", "cpu,cpu", "cpu,cpu,cpu"}) {
      CAPTURE(name);
      CAPTURE(devices);
      DaemonProcess d(secure_args(model, {"--devices", devices, "--metrics-listen", "127.0.0.1:0", "--prefill-chunk", "4"}));
      INFO(d.log());
      auto jobs = mixed_jobs(8);
      run_concurrently(model, d.endpoint(), jobs);
      for (const auto& j : jobs) {
        REQUIRE_MESSAGE(j.error.empty(), j.error);
        REQUIRE(j.got == j.want);
      }
      const auto text = http_get(metrics_port(d), "/metrics");
      REQUIRE(text.has_value());
      // some steps carried several sessions at once (otherwise this test proves nothing about batching)
      REQUIRE(metric(*text, "duet_batch_rows_bucket", "le=\"1\"") < metric(*text, "duet_batch_rows_count"));
      REQUIRE(metric(*text, "duet_kv_blocks", "state=\"used\"") == 0);  // every edge closed its session
      REQUIRE(d.stop() == 0);
    }
  }
}

TEST_CASE("a junk-sending client and SIGKILLed edges change no one's tokens; their KV blocks come back") {
  const std::string model = abc_model();  // slow enough on CPU that the victims are mid-generation when killed
  DaemonProcess d(secure_args(model, {"--idle-timeout", "1", "--metrics-listen", "127.0.0.1:0"}));
  INFO(d.log());
  const int port = metrics_port(d);
  // two edges in processes of their own, killed mid-generation
  const auto& k = keys();
  std::vector<std::unique_ptr<ChildProcess>> victims;
  for (int i = 0; i < 2; ++i)
    victims.push_back(std::make_unique<ChildProcess>(
        edge_binary(), std::vector<std::string>{"generate", "--model", model, "--server", d.endpoint(), "--server-key",
                                                k.server_public.string(), "--client-key", k.edge_secret.string(),
                                                "--prompt-ids", "1,2,3,4,5,6,7,8", "-n", "900", "--ignore-eos"}));
  std::atomic<bool> stop{false};
  std::thread junk([&] {
    zmq::context_t ctx;
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::sndtimeo, 100);
    protocol::configure_curve_client(s, k.studio, k.server.public_z85);
    s.connect(d.endpoint());
    while (!stop.load()) {
      (void)s.send(zmq::str_buffer("\x95\xa4junk"), zmq::send_flags::none);
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  // the victims are generating (their sessions open) before anything else starts
  double open = 0;
  for (int i = 0; i < 300 && open < 2; ++i) {
    std::this_thread::sleep_for(100ms);
    if (auto t = http_get(port, "/metrics")) open = metric(*t, "duet_sessions_open");
  }
  REQUIRE(open >= 2);
  auto jobs = mixed_jobs(6);
  std::thread killer([&] {
    std::this_thread::sleep_for(200ms);
    for (auto& v : victims) v->signal(SIGKILL);
  });
  run_concurrently(model, d.endpoint(), jobs);
  killer.join();
  stop = true;
  junk.join();
  for (const auto& j : jobs) {
    REQUIRE_MESSAGE(j.error.empty(), j.error);
    REQUIRE(j.got == j.want);
  }
  // the killed edges' sessions expire (idle 1 s) and give their blocks back
  double used = -1;
  for (int i = 0; i < 40 && used != 0; ++i) {
    std::this_thread::sleep_for(100ms);
    if (auto t = http_get(port, "/metrics")) used = metric(*t, "duet_kv_blocks", "state=\"used\"");
  }
  REQUIRE(used == 0);
  const auto text = http_get(port, "/metrics");
  REQUIRE(text.has_value());
  REQUIRE(metric(*text, "duet_sessions_total", "event=\"expired\"") >= 2);
  REQUIRE(metric(*text, "duet_requests_refused_total", "code=\"bad_message\"") > 0);
  REQUIRE(d.stop() == 0);
}

TEST_CASE("a real Prometheus scrapes the daemon's metrics and answers a query about them") {
  const std::string prometheus = "/usr/bin/prometheus";
  if (!fs::exists(prometheus)) FAIL("prometheus is not installed (scripts/setup.sh installs Debian's package)");
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--metrics-listen", "127.0.0.1:0"}));
  INFO(d.log());
  const int port = metrics_port(d);
  REQUIRE(split_tokens(split_config(model, d.endpoint()), kPrompt, fixed_options(8)) ==
          local_tokens(model, kPrompt, fixed_options(8)));
  TempDir dir("duet-prom");
  {
    std::ofstream cfg(dir / "prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: duet\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << port << "']\n";
  }
  const int prom_port = closed_port();
  ChildProcess prom(prometheus, {"--config.file=" + (dir / "prometheus.yml").string(),
                                   "--storage.tsdb.path=" + (dir / "data").string(),
                                   "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)});
  double served = -1;
  std::string last;
  for (int i = 0; i < 300 && served <= 0; ++i) {  // up to 30 s: start, first scrape
    std::this_thread::sleep_for(100ms);
    auto r = http_get(prom_port, "/api/v1/query?query=duet_forwards_served_total");
    if (!r) continue;
    last = *r;
    auto j = nlohmann::json::parse(*r, nullptr, false);
    if (j.is_discarded() || j["status"] != "success" || j["data"]["result"].empty()) continue;
    served = std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
  }
  INFO("prometheus said: " << last << "\n" << prom.err());
  REQUIRE(served >= 2);  // the prefill and at least one decode of the session above
  REQUIRE(d.stop() == 0);
}
