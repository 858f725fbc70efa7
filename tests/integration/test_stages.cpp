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

std::unique_ptr<ChildProcess> start_worker(const std::string& model, const std::string& name, int port,
                                          const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a{"--model", model, "--name", name, "--front", "127.0.0.1:" + std::to_string(port),
                             "--address", "127.0.0.1", "--step-timeout-ms", "2000", "--idle-timeout-ms", "3000"};
  a.insert(a.end(), extra.begin(), extra.end());
  return std::make_unique<ChildProcess>(stage_binary(), a);
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
  // llama_gqa (3 layers) and the bundled model; every fixture family is split in process by test_split
  for (const char* name : {"llama_gqa", "abc-folk"}) {
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
  // an edge that starts now is refused with stage_unavailable (naming w2), waits, and once w2 is
  // back generates the reference tokens
  const auto want = local_tokens(model, kPrompt, fixed_options(8));
  std::vector<int32_t> got;
  std::string error;
  std::thread edge([&] {
    try {
      got = split_tokens(split_config(model, f.d->endpoint(), 3000), kPrompt, fixed_options(8));
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  std::this_thread::sleep_for(1500ms);
  w2 = start_worker(model, "w2", f.port);
  edge.join();
  CHECK_MESSAGE(error.empty(), error);
  CHECK(got == want);
  const auto log = f.d->log();
  CHECK(log.find("stage_unavailable") != std::string::npos);
  CHECK(log.find("w2") != std::string::npos);
  REQUIRE_MESSAGE(f.wait_ready(2), (f.d->log() + "\nw1:\n" + w1->err() + w2->err()));
  check_serves(f.d->endpoint(), model);
  CHECK(f.d->stop() == 0);
}

TEST_CASE("stage workers: a worker killed mid-generation: the edge replays once it is back and loses no token") {
  const std::string model = fixture_model("llama_gqa");
  FrontDoor f(model, "cpu@w1=0-1,cpu@w2=2-2");
  auto w1 = start_worker(model, "w1", f.port);
  auto w2 = start_worker(model, "w2", f.port);
  REQUIRE_MESSAGE(f.wait_ready(), f.d->log());
  const auto opts = fixed_options(120, sampled(7));
  const auto want = local_tokens(model, kPrompt, opts);
  std::vector<int32_t> got;
  std::string error;
  int resumes = 0;
  std::thread edge([&] {
    try {
      got = split_tokens(split_config(model, f.d->endpoint(), 3000), kPrompt, opts, &resumes);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  for (int i = 0; i < 400 && f.d->log().find("opened for") == std::string::npos; ++i) std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(40ms);  // mid-generation
  w2->signal(SIGKILL);
  w2->wait_for(5s);
  std::this_thread::sleep_for(1000ms);
  w2 = start_worker(model, "w2", f.port);
  edge.join();
  CHECK_MESSAGE(error.empty(), error);
  CHECK(got == want);
  INFO(f.d->log());
  CHECK(resumes >= 1);  // the loss came mid-generation: the session was replayed
  CHECK(f.wait_ready(2));
  CHECK(f.d->stop() == 0);
}

TEST_CASE("stage workers: a worker holding another model, or not in the plan, is refused with a sentence") {
  FrontDoor f(fixture_model("llama_gqa"), "cpu@w1=0-2");
  auto w = start_worker(fixture_model("qwen2_bias"), "w1", f.port);
  const auto status = w->wait_for(20s);
  REQUIRE(status.has_value());
  CHECK(*status == 2);
  CHECK((w->out() + w->err()).find("holds model") != std::string::npos);
  std::this_thread::sleep_for(300ms);
  CHECK(f.d->log().find("stage worker 'w1' refused to join") != std::string::npos);
  // a worker the plan does not name is refused too
  auto stray = start_worker(fixture_model("llama_gqa"), "w9", f.port);
  const auto st2 = stray->wait_for(20s);
  REQUIRE(st2.has_value());
  CHECK(*st2 == 2);
  CHECK((stray->out() + stray->err()).find("names no worker 'w9'") != std::string::npos);
  CHECK(f.d->stop() == 0);
}

TEST_CASE("stage workers: the cluster address is never a wildcard") {
  auto r = run_process(cloud_binary(), secure_args(fixture_model("gpt2"), {"--plan", "cpu@w1=0-1", "--cluster-address",
                                                                            "0.0.0.0", "--cluster-allow-wildcard-store"}));
  CHECK(r.status == 1);
  CHECK((r.out + r.err).find("wildcard") != std::string::npos);
  r = run_process(cloud_binary(), secure_args(fixture_model("gpt2"), {"--plan", "cpu@w1=0-1"}));
  CHECK(r.status == 1);
  CHECK((r.out + r.err).find("cluster_address") != std::string::npos);
  r = run_process(stage_binary(), {"--model", fixture_model("gpt2"), "--name", "w1", "--front", "127.0.0.1:1", "--address", "::"});
  CHECK(r.status == 1);
  CHECK((r.out + r.err).find("wildcard") != std::string::npos);
}

#include "cloud/pipeline.hpp"
#include "cloud/step_wire.hpp"
#include "cloud/worker_plan.hpp"
#include "cloud/stage_plan.hpp"
#include "cloud/stage_worker.hpp"

namespace {

// The front door's Pipeline in this process, its workers as duet-stage processes.
struct InProcessFront {
  Checkpoint ckpt;
  std::unique_ptr<cloud::Pipeline> remote, local;
  std::vector<std::unique_ptr<ChildProcess>> workers;
  InProcessFront(const std::string& model, int n_workers, std::string wplan = "") : ckpt(model) {
    const int64_t layers = ckpt.config().num_layers;
    if (wplan.empty()) wplan = worker_plan(layers, n_workers);
    std::string lplan = std::regex_replace(wplan, std::regex("@w[0-9]+"), "");
    cloud::KvSizing kv;
    kv.max_blocks = 64;
    cloud::ClusterOptions co;
    co.address = "127.0.0.1";
    co.store_port = 0;
    co.allow_wildcard_store = true;
    co.step_timeout = 5s;
    remote = std::make_unique<cloud::Pipeline>(ckpt, cloud::make_stage_plan(wplan, {}, layers), torch::kFloat, kv, co);
    local = std::make_unique<cloud::Pipeline>(ckpt, cloud::make_stage_plan(lplan, {}, layers), torch::kFloat, kv);
    for (int w = 1; w <= n_workers; ++w)
      workers.push_back(start_worker(model, "w" + std::to_string(w), remote->remote()->store_port()));
    REQUIRE_MESSAGE(remote->remote()->wait_ready(20s), remote->unavailable_reason());
  }
};

}  // namespace

TEST_CASE("stage workers: two micro-batches in flight (submit/collect) == one step at a time == in process") {
  InProcessFront f(abc_model(), 2);
  const int64_t H = f.ckpt.config().hidden_size;
  torch::manual_seed(5);
  // sessions A (rows 0-1) and B (rows 2-3): a prefill of 5 each, then 6 decode steps
  const auto prefill = torch::randn({4 * 5, H});
  std::vector<torch::Tensor> decode;
  for (int s = 0; s < 6; ++s) decode.push_back(torch::randn({4, H}));
  auto run = [&](cloud::Pipeline& pl, bool pipelined) {
    std::vector<BlockTable> t(4);
    StepBatch pre;
    for (auto& x : t) {
      REQUIRE(pl.allocator().ensure(x, 12));
      pre.rows.push_back({&x, 0, 5});
    }
    std::vector<torch::Tensor> out{pl.forward(pre, prefill)};
    for (auto& x : t) x.length = 5;
    for (int s = 0; s < 6; ++s) {
      StepBatch a, b, all;
      for (int i = 0; i < 4; ++i) (i < 2 ? a : b).rows.push_back({&t[size_t(i)], 5 + s, 1});
      for (int i = 0; i < 4; ++i) all.rows.push_back({&t[size_t(i)], 5 + s, 1});
      if (pipelined) {
        const auto ta = pl.submit(a, decode[size_t(s)].narrow(0, 0, 2));
        const auto tb = pl.submit(b, decode[size_t(s)].narrow(0, 2, 2));
        out.push_back(torch::cat({pl.collect(ta), pl.collect(tb)}));
      } else {
        out.push_back(pl.forward(all, decode[size_t(s)]));
      }
      for (auto& x : t) x.length = 6 + s;
    }
    for (auto& x : t) pl.allocator().release(x);
    return torch::cat(out);
  };
  const auto want = run(*f.local, false);
  const auto seq = run(*f.remote, false);
  const auto pipe = run(*f.remote, true);
  REQUIRE(seq.sizes() == want.sizes());
  CHECK(torch::allclose(seq, want, 1e-5, 1e-5));
  CHECK(torch::allclose(pipe, want, 1e-5, 1e-5));
  CHECK(f.remote->describe().find("127.0.0.1") != std::string::npos);  // the table shows where each worker joined from
}

TEST_CASE("stage workers: the engine keeps steps of disjoint sessions in flight: several edges == monolithic") {
  // two workers, so the front door keeps two steps in flight (steps_in_flight automatic); four
  // edges at once, greedy and sampled, each gets its monolithic tokens
  const std::string model = fixture_model("llama_gqa");
  FrontDoor f(model, "cpu@w1=0-1,cpu@w2=2-2");
  auto w1 = start_worker(model, "w1", f.port);
  auto w2 = start_worker(model, "w2", f.port);
  REQUIRE_MESSAGE(f.wait_ready(), f.d->log());
  constexpr int kEdges = 4;
  std::vector<GenerationOptions> opts;
  std::vector<std::vector<int32_t>> want(kEdges), got(kEdges);
  std::vector<std::string> errors(kEdges);
  for (int e = 0; e < kEdges; ++e) {
    opts.push_back(e % 2 ? fixed_options(24, sampled(100 + uint64_t(e))) : fixed_options(24));
    want[size_t(e)] = local_tokens(model, kPrompt, opts.back());
  }
  std::vector<std::thread> edges;
  for (int e = 0; e < kEdges; ++e)
    edges.emplace_back([&, e] {
      try {
        got[size_t(e)] = split_tokens(split_config(model, f.d->endpoint()), kPrompt, opts[size_t(e)]);
      } catch (const std::exception& x) {
        errors[size_t(e)] = x.what();
      }
    });
  for (auto& t : edges) t.join();
  for (int e = 0; e < kEdges; ++e) {
    CAPTURE(e);
    CHECK_MESSAGE(errors[size_t(e)].empty(), errors[size_t(e)]);
    CHECK(got[size_t(e)] == want[size_t(e)]);
  }
  REQUIRE(f.d->stop() == 0);
  // the stop line counts the steps launched while another was in flight: the stages overlapped
  std::smatch m;
  const auto log = f.d->log();
  REQUIRE_MESSAGE(std::regex_search(log, m, std::regex("([0-9]+) launched behind another in flight")), log);
  CHECK(std::stoi(m[1]) > 0);
}

TEST_CASE("stage workers: a step in flight keeps its own block tables (its session may close before it lands)") {
  // a front-door stage after the worker runs at collect(): it must read the tables the step was
  // submitted with, not the session's, which the engine may have released by then
  InProcessFront f(fixture_model("llama_gqa"), 1, "cpu@w1=0-1,cpu=2-2");
  const int64_t H = f.ckpt.config().hidden_size;
  torch::manual_seed(9);
  const auto prefill = torch::randn({5, H}), step = torch::randn({1, H});
  auto run = [&](cloud::Pipeline& pl, bool close_in_flight) {
    auto t = std::make_unique<BlockTable>();
    REQUIRE(pl.allocator().ensure(*t, 8));
    StepBatch pre;
    pre.rows.push_back({t.get(), 0, 5});
    pl.forward(pre, prefill);
    t->length = 5;
    StepBatch dec;
    dec.rows.push_back({t.get(), 5, 1});
    const auto ticket = pl.submit(dec, step);
    if (close_in_flight) {  // the session closes: its table released, overwritten and freed
      pl.allocator().release(*t);
      t->blocks.assign(t->blocks.size() + 3, 1 << 20);
      t.reset();
    }
    auto y = pl.collect(ticket);
    if (t) pl.allocator().release(*t);
    return y;
  };
  const auto want = run(*f.local, false);
  CHECK(torch::allclose(run(*f.remote, true), want, 1e-5, 1e-5));
}

TEST_CASE("stage workers: /metrics shows the plan table (worker, host, device, layers, weights, KV)") {
  const std::string model = fixture_model("llama_gqa");
  FrontDoor f(model, "cpu@w1=0-1,cpu@w2=2-2", {"--metrics-listen", "127.0.0.1:0"});
  const int port = metrics_port(*f.d);
  auto scrape = [&] { return http_get(port, "/metrics").value_or(""); };
  const std::string w1 = "stage=\"0\",worker=\"w1\",host=\"-\",device=\"cpu\",layers=\"0-1\"";
  CHECK(metric(scrape(), "duet_stage_weight_bytes", w1) == -1);  // not joined yet
  auto a = start_worker(model, "w1", f.port);
  auto b = start_worker(model, "w2", f.port);
  REQUIRE_MESSAGE(f.wait_ready(), f.d->log());
  check_serves(f.d->endpoint(), model);  // the engine has looked at the new generation
  const auto text = scrape();
  INFO(text);
  const double w1_bytes =
      metric(text, "duet_stage_weight_bytes", "stage=\"0\",worker=\"w1\",host=\"127.0.0.1\",device=\"cpu\",layers=\"0-1\"");
  const double w2_bytes =
      metric(text, "duet_stage_weight_bytes", "stage=\"1\",worker=\"w2\",host=\"127.0.0.1\",device=\"cpu\",layers=\"2-2\"");
  CHECK(w1_bytes > 0);
  CHECK(w1_bytes == doctest::Approx(2 * w2_bytes).epsilon(0.01));  // two layers against one
  CHECK(metric(text, "duet_stage_kv_bytes", "stage=\"1\",worker=\"w2\",host=\"127.0.0.1\",device=\"cpu\",layers=\"2-2\"") > 0);
  CHECK(f.d->stop() == 0);
}

TEST_CASE("step wire: the header and rows a worker receives are checked before use") {
  namespace sw = cloud::step_wire;
  sw::Header h;
  h.rows = 1;
  h.tokens = 1;
  h.ids = sw::kMinRowWords;
  h.hidden = 8;
  h.x_rows = 1;
  auto words = sw::encode_header(h);
  sw::Limits l;
  l.hidden = 8;
  CHECK(sw::decode_header(words.data(), words.size(), l).rows == 1);
  CHECK(sw::decode_header(words.data(), words.size(), l).x_rows == 1);
  auto refused = [&](size_t word, int64_t value, const char* why) {
    auto w = words;
    w[word] = value;
    CAPTURE(word);
    CHECK_THROWS_WITH_AS(sw::decode_header(w.data(), w.size(), l), doctest::Contains(why), sw::WireError);
  };
  refused(1, sw::kVersion + 1, ("version " + std::to_string(sw::kVersion + 1)).c_str());
  refused(8, 9, "hidden 9");
  refused(10, 2, "x_rows 2");  // more rows of x than the step has positions
  refused(10, -1, "x_rows -1");
  refused(13, 7, "spare word 13");
  // rows naming a block outside the pool
  BlockTable t{{3}, 0};
  StepBatch b;
  b.rows.push_back({&t, 0, 1});
  const auto rows = sw::encode_rows(b, 16);
  CHECK(sw::decode_rows(rows.data(), rows.size(), h, 4, 16).batch.rows.size() == 1);
  CHECK_THROWS_WITH_AS(sw::decode_rows(rows.data(), rows.size(), h, 3, 16), doctest::Contains("block 3"), sw::WireError);
  // each row's out crosses: a prompt chunk that asks for nothing, the end of one that asks for its last
  BlockTable t2{{1, 2}, 0};
  StepBatch two;
  two.rows.push_back({&t, 0, 3, 0});
  two.rows.push_back({&t2, 0, 20, 1});
  const auto tw = sw::encode_rows(two, 16);
  sw::Header h2 = h;
  h2.rows = 2;
  h2.tokens = 23;
  h2.ids = static_cast<int64_t>(tw.size());
  const auto back = sw::decode_rows(tw.data(), tw.size(), h2, 4, 16);
  CHECK(back.batch.rows[0].outputs() == 0);
  CHECK(back.batch.rows[1].outputs() == 1);
  CHECK(back.batch.outputs() == 1);
  auto bad_out = tw;
  bad_out[2] = 4;  // row 0 asks for 4 of its 3 positions
  CHECK_THROWS_WITH_AS(sw::decode_rows(bad_out.data(), bad_out.size(), h2, 4, 16), doctest::Contains("out 4"),
                       sw::WireError);
}

TEST_CASE("stage workers: a hung worker (SIGSTOP) is detected within heartbeat + stage timeout") {
  const std::string model = fixture_model("gpt2");
  FrontDoor f(model, "cpu@w1=0-0,cpu@w2=1-1");  // --stage-timeout-ms 2000, heartbeat 1000
  auto w1 = start_worker(model, "w1", f.port);
  auto w2 = start_worker(model, "w2", f.port);
  REQUIRE_MESSAGE(f.wait_ready(), f.d->log());
  w1->signal(SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  bool lost = false;
  while (!lost && std::chrono::steady_clock::now() - t0 < 6s) {
    lost = f.d->log().find("stage cluster generation 1 lost") != std::string::npos;
    std::this_thread::sleep_for(50ms);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CAPTURE(secs);
  CHECK(lost);
  CHECK(secs < 1.0 + 2.0 + 1.0);  // heartbeat period + timeout, with a second of slack for a loaded machine
  w1->signal(SIGCONT);  // it finds its links gone and rejoins: the cluster forms again
  REQUIRE_MESSAGE(f.wait_ready(2), f.d->log());
  check_serves(f.d->endpoint(), model);
  CHECK(f.d->stop() == 0);
}

TEST_CASE("stage workers: a plan mixing front-door stages and a worker == in process") {
  // layer 0 and 5 here, 1-4 in the worker: the local stages before and after the chain run around it
  InProcessFront f(abc_model(), 1, "cpu=0-0,cpu@w1=1-4,cpu=5-5");
  const int64_t H = f.ckpt.config().hidden_size;
  torch::manual_seed(9);
  const auto x = torch::randn({7, H});
  auto run = [&](cloud::Pipeline& pl) {
    BlockTable t;
    REQUIRE(pl.allocator().ensure(t, 8));
    StepBatch b;
    b.rows.push_back({&t, 0, 7});
    auto y = pl.forward(b, x);
    t.length = 7;
    StepBatch d;
    d.rows.push_back({&t, 7, 1});
    auto y2 = pl.forward(d, x.narrow(0, 0, 1));
    pl.allocator().release(t);
    return torch::cat({y, y2});
  };
  CHECK(torch::allclose(run(*f.remote), run(*f.local), 1e-5, 1e-5));
  CHECK(stage_count(f.remote->describe()) == 3);
}

TEST_CASE("stage plan: worker items parse, and bad ones are refused with a sentence") {
  const auto p = cloud::make_stage_plan("cpu=0-0,cuda:1@gpu-b=1-2", {}, 3);
  REQUIRE(p.size() == 2);
  CHECK(p[0].worker.empty());
  CHECK(p[1].worker == "gpu-b");
  CHECK(p[1].device == "cuda:1");
  CHECK_THROWS_WITH(cloud::make_stage_plan("cpu@a=0-0,cpu@a=1-2", {}, 3), doctest::Contains("already runs a stage"));
  CHECK_THROWS_WITH(cloud::make_stage_plan("cpu@a=0-0,cpu=1-1,cpu@b=2-2", {}, 3), doctest::Contains("consecutive"));
  CHECK_THROWS_WITH(cloud::make_stage_plan("cpu@a b=0-2", {}, 3), doctest::Contains("worker name"));
  CHECK_THROWS_WITH(cloud::make_stage_plan("@a=0-2", {}, 3), doctest::Contains("worker name"));
  // the published plan reads back as written, and its fingerprint changes with it
  cloud::WorkerPlan w;
  w.model = "abc";
  w.dtype = "fp32";
  w.hidden = 8;
  w.num_blocks = 9;
  w.block_size = 16;
  w.workers.push_back({"gpu-b", "cuda:1", 1, 3, 1, 0, 0});
  const auto back = cloud::WorkerPlan::parse(w.to_text());
  CHECK(back.to_text() == w.to_text());
  CHECK(back.fingerprint() == w.fingerprint());
  w.num_blocks = 10;
  CHECK(back.fingerprint() != w.fingerprint());
  CHECK_THROWS_WITH(cloud::WorkerPlan::parse("duet-stage-plan 2\n"), doctest::Contains("bad line"));
}

TEST_CASE("stage workers: a session that lived through a lost worker is refused, not served from an empty pool") {
  InProcessFront f(fixture_model("llama_gqa"), 2);
  const int64_t H = f.ckpt.config().hidden_size;
  torch::manual_seed(3);
  const auto x = torch::randn({6, H});
  BlockTable a;
  REQUIRE(f.remote->allocator().ensure(a, 8));
  StepBatch pre;
  pre.rows.push_back({&a, 0, 5});
  f.remote->forward(pre, x.narrow(0, 0, 5));
  a.length = 5;
  // w2 dies and comes back: generation 2, its pool empty
  f.workers[1]->signal(SIGKILL);
  f.workers[1]->wait_for(5s);
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (f.remote->remote()->ready() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(20ms);
  REQUIRE_FALSE(f.remote->remote()->ready());
  // once w1 is back in the store (a fraction of a second), the sentence names the missing worker
  const auto named_by = std::chrono::steady_clock::now() + 3s;
  while (f.remote->unavailable_reason().find("'w2'") == std::string::npos && std::chrono::steady_clock::now() < named_by)
    std::this_thread::sleep_for(20ms);
  const auto reason = f.remote->unavailable_reason();
  CAPTURE(reason);
  CHECK(reason.find("waiting for worker") != std::string::npos);
  CHECK(reason.find("'w2' (cpu@w2=2-2)") != std::string::npos);
  f.workers[1] = start_worker(fixture_model("llama_gqa"), "w2", f.remote->remote()->store_port());
  REQUIRE_MESSAGE(f.remote->remote()->wait_ready(20s), f.remote->unavailable_reason());
  CHECK(f.remote->remote()->generation() == 2);
  StepBatch dec;
  dec.rows.push_back({&a, 5, 1});
  CHECK_THROWS_WITH_AS(f.remote->forward(dec, x.narrow(0, 5, 1)), doctest::Contains("replay"), cloud::StageUnavailable);
  f.remote->allocator().release(a);
  // a new session (it may get the same blocks) runs, and equals the in-process pipeline
  auto run = [&](cloud::Pipeline& pl) {
    BlockTable t;
    REQUIRE(pl.allocator().ensure(t, 8));
    StepBatch p1;
    p1.rows.push_back({&t, 0, 5});
    auto y = pl.forward(p1, x.narrow(0, 0, 5));
    t.length = 5;
    StepBatch d1;
    d1.rows.push_back({&t, 5, 1});
    auto y2 = pl.forward(d1, x.narrow(0, 5, 1));
    pl.allocator().release(t);
    return torch::cat({y, y2});
  };
  CHECK(torch::allclose(run(*f.remote), run(*f.local), 1e-5, 1e-5));
}

TEST_CASE("stage plan: DEVICE@WORKER=auto items share the layers between their neighbours; bad ones are refused") {
  const auto p = cloud::make_stage_plan("cpu=0-1,cpu@w1=auto,cpu@w2=auto", {}, 6);
  REQUIRE(p.size() == 3);
  CHECK(p[1].auto_layers);
  CHECK(p[2].auto_layers);
  CHECK(p[1].first == 2);  // an equal split until the workers offer their memory
  CHECK(p[1].last == 4);
  CHECK(p[2].last == 6);
  const auto mid = cloud::make_stage_plan("cpu=0-0,cpu@a=auto,cpu@b=auto,cpu@c=auto,cpu=5-5", {}, 6);
  REQUIRE(mid.size() == 5);
  CHECK(mid[1].first == 1);
  CHECK(mid[3].last == 5);
  CHECK(mid[4].first == 5);
  CHECK_THROWS_WITH(cloud::make_stage_plan("cpu=auto", {}, 3), doctest::Contains("only a worker's layers"));
  CHECK_THROWS_WITH(cloud::make_stage_plan("cpu@a=0-1,cpu@b=auto", {}, 3), doctest::Contains("not a mix"));
  CHECK_THROWS_WITH(cloud::make_stage_plan("cpu@a=auto,cpu@b=2-2", {}, 3), doctest::Contains("not a mix"));
  CHECK_THROWS_WITH(cloud::make_stage_plan("cpu=0-1,cpu@a=auto,cpu@b=auto", {}, 3), doctest::Contains("one at least"));
  // layers follow the offers; equal shares unless every offer is known
  CHECK(cloud::balance_by_offers(4, {300ll << 20, 100ll << 20}) == std::vector<int64_t>{3, 1});
  CHECK(cloud::balance_by_offers(4, {-1, 100ll << 20}) == std::vector<int64_t>{2, 2});
  // the ask and the offer read back; garbage is refused with a sentence
  cloud::WorkerPlan w;
  w.workers.push_back({"gpu-b", "cuda:1", 1, 3, 1, 0, 0});
  const auto ask = cloud::WorkerPlan::parse_ask(w.ask_text());
  REQUIRE(ask.size() == 1);
  CHECK(ask[0].first == "gpu-b");
  CHECK(ask[0].second == "cuda:1");
  CHECK(cloud::parse_offer(cloud::offer_text(12345)) == 12345);
  CHECK_THROWS_WITH(cloud::parse_offer("free lots"), doctest::Contains("is not 'free <bytes>'"));
  CHECK(cloud::stage_offer_bytes("cpu", 64ll << 20) == (64ll << 20));  // capped by --max-memory-mib
  CHECK(cloud::stage_offer_bytes("cpu", 0) > 0);                       // the host's available memory
}

TEST_CASE("stage workers: an automatic split follows the memory each worker offers, and again after a restart") {
  const std::string model = abc_model();  // 6 layers: 0-1 here, 2-5 over the workers
  const auto greedy = fixed_options(16);
  const auto want = local_tokens(model, kPrompt, greedy);
  FrontDoor f(model, "cpu=0-1,cpu@w1=auto,cpu@w2=auto");
  auto w1 = start_worker(model, "w1", f.port, {"--max-memory-mib", "300"});
  auto w2 = start_worker(model, "w2", f.port, {"--max-memory-mib", "100"});
  REQUIRE_MESSAGE(f.wait_ready(), f.d->log());
  INFO(f.d->log());
  CHECK(f.d->log().find("w1 offered 300 MiB -> layers 2-4, w2 offered 100 MiB -> layers 5-5") != std::string::npos);
  CHECK(w1->out().find("layers 2-4 on cpu") != std::string::npos);
  CHECK(split_tokens(split_config(model, f.d->endpoint()), kPrompt, greedy) == want);
  // w2 comes back offering as much as w1: the next generation splits the layers evenly
  w2->signal(SIGKILL);
  w2->wait_for(5s);
  w2 = start_worker(model, "w2", f.port, {"--max-memory-mib", "300"});
  REQUIRE_MESSAGE(f.wait_ready(2, 30s), f.d->log());
  CHECK(f.d->log().find("w1 offered 300 MiB -> layers 2-3, w2 offered 300 MiB -> layers 4-5") != std::string::npos);
  CHECK(split_tokens(split_config(model, f.d->endpoint(), 3000), kPrompt, greedy) == want);
  CHECK(f.d->stop() == 0);
}
