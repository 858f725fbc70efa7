// Stage workers as separate processes (issue 22): a duet-cloud front door whose plan names
// duet-stage workers, on loopback over Gloo. Tokens equal the monolithic reference over 1, 2 and 3
// workers, greedy and sampled; a killed worker is seen and the front door serves again once it is
// back; a worker holding another model is refused; the cluster address is never a wildcard.
#include "../common/torch_doctest.hpp"

#include <signal.h>

#include <memory>
#include <regex>
#include <thread>

#include "edge_helpers.hpp"

using namespace duet;
using namespace duet::itest;

namespace {

std::string stage_binary() {
  auto p = cloud_binary();
  return p.substr(0, p.rfind("duet-cloud")) + "duet-stage";
}

// A front door for `plan` (items DEVICE@NAME=FIRST-LAST) on loopback, any free store port.
struct FrontDoor {
  std::unique_ptr<DaemonProcess> d;
  int port = 0;
  FrontDoor(const std::string& model, const std::string& plan, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> a = {"--plan", plan, "--cluster-address", "127.0.0.1", "--cluster-port", "0",
                                  "--cluster-allow-wildcard-store", "--stage-timeout-ms", "2000"};
    a.insert(a.end(), extra.begin(), extra.end());
    d = std::make_unique<DaemonProcess>(secure_args(model, a));
    std::smatch m;
    const auto log = d->log();
    REQUIRE_MESSAGE(std::regex_search(log, m, std::regex("store on 127\\.0\\.0\\.1:([0-9]+)")), log);
    port = std::stoi(m[1]);
  }
  // waits until the log says the n-th generation formed
  bool wait_ready(int nth = 1, std::chrono::milliseconds limit = 20s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      const auto log = d->log();
      int n = 0;
      for (size_t at = 0; (at = log.find("stage cluster ready", at)) != std::string::npos; ++at) ++n;
      if (n >= nth) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
};

std::unique_ptr<ChildProcess> start_worker(const std::string& model, const std::string& name, int port) {
  return std::make_unique<ChildProcess>(
      stage_binary(), std::vector<std::string>{"--model", model, "--name", name, "--front", "127.0.0.1:" + std::to_string(port),
                                               "--address", "127.0.0.1", "--step-timeout-ms", "2000", "--idle-timeout-ms", "3000"});
}

// "cpu@w1=0-a,cpu@w2=..." over `workers` workers, layers as evenly as they go
std::string worker_plan(int64_t layers, int workers) {
  std::string plan;
  for (int64_t s = 0, first = 0; s < workers; ++s) {
    const int64_t last = first + layers / workers + (s < layers % workers ? 1 : 0) - 1;
    plan += (s ? "," : "") + std::string("cpu@w") + std::to_string(s + 1) + "=" + std::to_string(first) + "-" + std::to_string(last);
    first = last + 1;
  }
  return plan;
}

int64_t layers_of(const std::string& model);

}  // namespace

#include "common/checkpoint.hpp"
namespace {
int64_t layers_of(const std::string& model) { return Checkpoint(model).config().num_layers; }
}  // namespace

TEST_CASE("stage workers: split == monolithic over 1, 2 and 3 workers, greedy and sampled") {
  for (const char* name : {"llama_gqa", "gemma2", "abc-folk"}) {
    const std::string model = std::string(name) == "abc-folk" ? abc_model() : fixture_model(name);
    const auto greedy = fixed_options(20);
    const auto samp = fixed_options(20, sampled(77));
    const auto want_greedy = local_tokens(model, kPrompt, greedy);
    const auto want_sampled = local_tokens(model, kPrompt, samp);
    for (int workers = 1; workers <= std::min<int64_t>(3, layers_of(model)); ++workers) {
      CAPTURE(std::string(name));
      CAPTURE(workers);
      FrontDoor f(model, worker_plan(layers_of(model), workers));
      std::vector<std::unique_ptr<ChildProcess>> ws;
      for (int w = 1; w <= workers; ++w) ws.push_back(start_worker(model, "w" + std::to_string(w), f.port));
      REQUIRE_MESSAGE(f.wait_ready(), f.d->log());
      INFO(f.d->log());
      CHECK(stage_count(f.d->log()) == workers);
      CHECK(split_tokens(split_config(model, f.d->endpoint()), kPrompt, greedy) == want_greedy);
      CHECK(split_tokens(split_config(model, f.d->endpoint()), kPrompt, samp) == want_sampled);
      CHECK(f.d->stop() == 0);
    }
  }
}

TEST_CASE("stage workers: a killed worker is detected, the front door serves again once it is back") {
  const std::string model = fixture_model("llama_gqa");
  FrontDoor f(model, "cpu@w1=0-1,cpu@w2=2-2");
  auto w1 = start_worker(model, "w1", f.port);
  auto w2 = start_worker(model, "w2", f.port);
  REQUIRE_MESSAGE(f.wait_ready(), f.d->log());
  check_serves(f.d->endpoint(), model);
  w2->signal(SIGKILL);
  w2->wait_for(5s);
  // within the heartbeat (1 s) the front door sees it; a forward in between gets an error
  std::this_thread::sleep_for(1500ms);
  REQUIRE_MESSAGE(f.d->log().find("stage cluster generation 1 lost") != std::string::npos, f.d->log());
  bool failed = false;
  try {
    split_tokens(split_config(model, f.d->endpoint(), 3000), kPrompt, fixed_options(4));
  } catch (const std::exception& e) {
    failed = true;
    INFO(e.what());
    CHECK(std::string(e.what()).find("w2") != std::string::npos);  // the sentence names the missing worker
  }
  CHECK(failed);
  w2 = start_worker(model, "w2", f.port);
  REQUIRE_MESSAGE(f.wait_ready(2), f.d->log() + "\nw1:\n" + w1->err() + w2->err());
  check_serves(f.d->endpoint(), model);
  CHECK(f.d->stop() == 0);
}

TEST_CASE("stage workers: a worker holding another model is refused, with a sentence on both sides") {
  FrontDoor f(fixture_model("llama_gqa"), "cpu@w1=0-2");
  auto w = start_worker(fixture_model("qwen2_bias"), "w1", f.port);
  const auto status = w->wait_for(20s);
  REQUIRE(status.has_value());
  CHECK(*status == 2);
  CHECK(w->err().find("holds model") != std::string::npos);
  std::this_thread::sleep_for(300ms);
  CHECK(f.d->log().find("stage worker 'w1' refused to join") != std::string::npos);
  CHECK(f.d->stop() == 0);
}

TEST_CASE("stage workers: the cluster address is never a wildcard") {
  auto r = run_process(cloud_binary(), secure_args(fixture_model("gpt2"), {"--plan", "cpu@w1=0-1", "--cluster-address",
                                                                            "0.0.0.0", "--cluster-allow-wildcard-store"}));
  CHECK(r.status == 1);
  CHECK(r.err.find("wildcard") != std::string::npos);
  r = run_process(cloud_binary(), secure_args(fixture_model("gpt2"), {"--plan", "cpu@w1=0-1"}));
  CHECK(r.status == 1);
  CHECK(r.err.find("cluster_address") != std::string::npos);
  r = run_process(stage_binary(), {"--model", fixture_model("gpt2"), "--name", "w1", "--front", "127.0.0.1:1", "--address", "::"});
  CHECK(r.status == 1);
  CHECK(r.err.find("wildcard") != std::string::npos);
}
