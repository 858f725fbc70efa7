// duet-load: N concurrent edges against one running duet-cloud, each its own CurveZMQ
// connection and session; aggregate decode tok/s and per-token latency, every token checked.
//   duet-load --endpoint tcp://127.0.0.1:7700 --server-key keys/server.key
//       --client-key keys/clients/load.key_secret --model DIR --dtype bf16 --edge-device cuda
//       --sessions 1,8,32,64,128 --json load.json
// Phases, so that the edge's own compute is not what limits the figure:
//   1 reference (untimed): per distinct prompt, one greedy run through the daemon with the real
//     edge pieces (duet::generate + RemoteBackbone), EOS ignored -> reference tokens;
//   2 timed: every session replays its prompt's reference teacher-forced: a prefill, then one
//     single-position forward per reference token, from rows embedded before timing;
//   3 check (untimed): norm + LM head over each session's returned rows, argmax == reference.
// Works against any daemon that speaks protocol v1: one forward at a time, or batched.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "bench/gpu_memory.hpp"
#include "bench/load_check.hpp"
#include "bench/load_run.hpp"
#include "bench/metrics_scrape.hpp"
#include "common/dtype.hpp"
#include "common/spin_window.hpp"
#include "common/generator.hpp"
#include "common/percentile.hpp"
#include "common/wire/tensor_frames.hpp"
#include "edge/client/remote_backbone.hpp"

using json = nlohmann::json;
namespace b = duet::bench;

namespace {


// Records what the daemon returned at each step of the reference run, for the check's diagnostics.
class RecordingBackbone final : public duet::Backbone {
 public:
  explicit RecordingBackbone(duet::Backbone& inner) : inner_(inner) {}
  torch::Tensor forward(const torch::Tensor& hidden, int64_t start, bool last_only) override {
    auto out = inner_.forward(hidden, start, last_only);
    rows.push_back(out.to(torch::kCPU));
    return out;
  }
  void reset() override { inner_.reset(); rows.clear(); }
  double last_compute_ms() const override { return inner_.last_compute_ms(); }
  std::vector<torch::Tensor> rows;  // [1, H] each, compute dtype

 private:
  duet::Backbone& inner_;
};

struct Reference {
  std::vector<int32_t> prompt, tokens;  // tokens: T greedy ids
  torch::Tensor hidden;                 // [T, H] the rows that gave them, CPU, compute dtype
  std::vector<std::byte> prefill, decode;  // wire-dtype rows: prompt [P, H], tokens 0..T-2 [T-1, H]
  std::vector<double> step_ms;          // the real edge's decode round trips
};

std::vector<std::byte> frame_bytes(const torch::Tensor& rows, duet::protocol::WireDtype wire) {
  duet::protocol::TensorDesc d;
  auto f = duet::tensor_to_frame(rows, wire, d);  // the bytes the real edge would send
  const auto* p = static_cast<const std::byte*>(f.data());
  return {p, p + f.size()};
}

// The daemon's step counters (its /metrics), read before and after a timed run: their difference
// is that run's steps alone (rows per step, how full they were, the batching window's waits).
struct StepCounters {
  double steps = 0, rows = 0, live = 0, seconds = 0, waits = 0, wait_seconds = 0, prefill_tokens = 0;
  double in_seconds = 0, ins = 0, out_seconds = 0, outs = 0;  // hand-overs between the daemon's threads
};

std::optional<StepCounters> read_step_counters(const std::string& host, int port) {
  const auto text = b::http_get(host, port, "/metrics");
  if (!text) return std::nullopt;
  auto v = [&](const char* name, const char* labels = "") { return b::metric_sample(*text, name, labels).value_or(0); };
  StepCounters c;
  c.steps = v("duet_steps_total");
  c.rows = v("duet_step_rows_total");
  c.live = v("duet_step_live_sessions_total");
  c.seconds = v("duet_step_seconds_total");
  c.waits = v("duet_batch_wait_steps_total");
  c.wait_seconds = v("duet_batch_wait_seconds_total");
  c.prefill_tokens = v("duet_tokens_total", "phase=\"prefill\"");
  c.in_seconds = v("duet_handoff_seconds_total", "part=\"in\"");
  c.ins = v("duet_handoffs_total", "part=\"in\"");
  c.out_seconds = v("duet_handoff_seconds_total", "part=\"out\"");
  c.outs = v("duet_handoffs_total", "part=\"out\"");
  return c;
}

json step_figures(const StepCounters& a, const StepCounters& z) {
  const double steps = z.steps - a.steps;
  if (steps <= 0) return json();
  return {{"steps", steps},
          {"rows_per_step", (z.rows - a.rows) / steps},
          {"live_sessions_per_step", (z.live - a.live) / steps},
          {"step_ms", 1e3 * (z.seconds - a.seconds) / steps},
          {"steps_that_waited", z.waits - a.waits},
          {"wait_ms_per_step", 1e3 * (z.wait_seconds - a.wait_seconds) / steps},
          {"prefill_tokens", z.prefill_tokens - a.prefill_tokens},
          // ms per message: socket thread's receipt -> engine (in), engine's reply -> sent (out)
          {"handoff_in_ms", z.ins > a.ins ? 1e3 * (z.in_seconds - a.in_seconds) / (z.ins - a.ins) : 0.0},
          {"handoff_out_ms", z.outs > a.outs ? 1e3 * (z.out_seconds - a.out_seconds) / (z.outs - a.outs) : 0.0}};
}

json summarize(size_t n, const b::RunResult& run, const std::vector<b::RowCheck>& checks, double daemon_mib) {
  std::vector<double> step, cloud, prefill, prefill_cloud;
  int64_t failed = 0, mismatched = 0, bad_steps = 0, decode_tokens = 0, beyond = 0;
  double worst_gap = 0, max_diff = -1;
  json errors = json::array(), per_session = json::array();
  for (size_t i = 0; i < n; ++i) {
    const auto& s = run.sessions[i];
    if (!s.error.empty()) {
      ++failed;
      if (errors.size() < 5) errors.push_back("session " + std::to_string(i) + ": " + s.error);
      per_session.push_back({{"session", i}, {"error", s.error}});
      continue;
    }
    step.insert(step.end(), s.step_ms.begin(), s.step_ms.end());
    for (double c : s.step_cloud_ms)
      if (c >= 0) cloud.push_back(c);
    prefill.push_back(s.prefill_ms);
    if (s.prefill_cloud_ms >= 0) prefill_cloud.push_back(s.prefill_cloud_ms);
    decode_tokens += int64_t(s.step_ms.size());
    json ps{{"session", i}, {"prefill_ms", s.prefill_ms}, {"token_ms_p50", duet::percentile(s.step_ms, 0.5, -1)}};
    if (i < checks.size()) {
      const auto& c = checks[i];
      mismatched += c.mismatches > 0;
      bad_steps += c.mismatches;
      beyond += c.beyond_tolerance;
      worst_gap = std::max(worst_gap, c.worst_gap);
      max_diff = std::max(max_diff, c.max_abs_diff);
      ps["mismatches"] = c.mismatches;
      if (c.mismatches) ps["first_mismatch"] = c.first_mismatch;
    }
    per_session.push_back(ps);
  }
  json j;
  j["sessions"] = n;
  j["sessions_ok"] = int64_t(n) - failed - mismatched;
  j["sessions_failed"] = failed;
  j["sessions_mismatched"] = mismatched;
  j["mismatched_steps"] = bad_steps;
  j["mismatches_beyond_tolerance"] = beyond;
  j["worst_logit_gap"] = worst_gap;  // max logit - reference token's logit, over mismatches
  j["hidden_max_abs_diff_vs_reference"] = max_diff;
  j["checked"] = !checks.empty();
  j["decode_tokens"] = decode_tokens;
  j["decode_wall_s"] = run.decode_wall_s;
  j["aggregate_tok_s"] = run.decode_wall_s > 0 ? double(decode_tokens) / run.decode_wall_s : 0;
  j["token_ms_p50"] = duet::percentile(step, 0.5, -1);
  j["token_ms_p99"] = duet::percentile(step, 0.99, -1);
  j["token_ms_max"] = duet::percentile(step, 1.0, -1);
  j["prefill_ms_p50"] = duet::percentile(prefill, 0.5, -1);
  j["prefill_ms_max"] = duet::percentile(prefill, 1.0, -1);
  j["cloud_token_ms_p50"] = duet::percentile(cloud, 0.5, -1);  // -1: the daemon reported none
  j["cloud_prefill_ms_p50"] = duet::percentile(prefill_cloud, 0.5, -1);
  j["connect_s"] = run.connect_s;
  j["daemon_gpu_mib"] = daemon_mib;
  j["errors"] = errors;
  j["per_session"] = per_session;
  return j;
}

// Each edge holds a ZeroMQ context (an I/O thread, a few eventfds) and a TCP connection: raise the
// soft limit on open files to the hard one so that hundreds of edges fit.
void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "duet-load: " << msg << " (duet-load --help lists the flags)\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-load: N concurrent edge sessions against a running duet-cloud; tok/s, latency, token check"};
  std::string endpoint, server_key, client_key, model, dtype = "fp32", wire, edge_device = "cpu", json_path, name, metrics;
  std::vector<int64_t> sessions{1};
  int64_t prompts = 4, prompt_len = 128, new_tokens = 256, warmup_steps = 4, timeout_ms = 120000, daemon_pid = 0,
          spin_us = 0;
  uint32_t seed = 1234;
  double stagger_ms = 0, tolerance = 0;
  bool insecure = false, no_check = false;
  app.add_option("--endpoint", endpoint, "the daemon's endpoint, e.g. tcp://127.0.0.1:7700")->required();
  app.add_option("--server-key", server_key, "the daemon's public NAME.key (pinned)");
  app.add_option("--client-key", client_key, "this client's NAME.key_secret (its public key allow-listed)");
  app.add_flag("--insecure", insecure, "plain TCP, for a daemon started with --insecure");
  app.add_option("--model", model, "HF model folder (the daemon's)")->required();
  app.add_option("--dtype", dtype, "edge pieces' compute dtype: fp32, fp16, bf16");
  app.add_option("--wire-dtype", wire, "activation dtype on the wire (default: --dtype)");
  app.add_option("--edge-device", edge_device, "device of the edge pieces for the reference and the check: cpu, cuda");
  app.add_option("--sessions", sessions, "concurrent sessions; a list runs each in turn: 1,8,32,64,128")->delimiter(',');
  app.add_option("--prompts", prompts, "distinct random prompts; session i uses prompt i % K");
  app.add_option("--prompt-len", prompt_len, "prompt length in tokens");
  app.add_option("--new-tokens", new_tokens, "tokens per session (EOS ignored): 1 from the prefill, the rest decoded");
  app.add_option("--seed", seed, "seed of the random prompt ids");
  app.add_option("--stagger-ms", stagger_ms, "session i starts i * this after the others (0: all together)");
  app.add_option("--warmup-steps", warmup_steps, "untimed run of this many decode steps at each N first (0: none)");
  app.add_option("--timeout-ms", timeout_ms, "longest wait for one reply");
  app.add_option("--spin-us", spin_us, "each session polls for its reply without sleeping this long (0: off)")
      ->check(CLI::Range(int64_t{0}, duet::kMaxSpinUs));
  app.add_option("--daemon-pid", daemon_pid, "read this process's GPU memory (nvidia-smi) at the end of each N");
  app.add_flag("--no-check", no_check, "skip the token check (phase 3)");
  app.add_option("--logit-tolerance", tolerance, "a mismatch within this many logits of the max is reported, not failed");
  app.add_option("--name", name, "label in the report (default: the model folder's name)");
  app.add_option("--json", json_path, "write the report here");
  app.add_option("--metrics", metrics,
                 "the daemon's metrics_listen (IPv4:PORT): rows per step, step ms and the batching window's wait "
                 "for each run, from its /metrics before and after");
  CLI11_PARSE(app, argc, argv);

  if (sessions.empty()) usage_error("--sessions is empty");
  for (auto n : sessions)
    if (n < 1 || n > 1024) usage_error("--sessions " + std::to_string(n) + ": give 1 to 1024 sessions");
  if (prompts < 1) usage_error("--prompts must be at least 1");
  if (prompt_len < 1 || new_tokens < 1) usage_error("--prompt-len and --new-tokens must be at least 1");
  if (warmup_steps < 0 || timeout_ms < 1 || stagger_ms < 0 || tolerance < 0)
    usage_error("--warmup-steps, --stagger-ms and --logit-tolerance must be >= 0, --timeout-ms > 0");
  if (insecure && (!server_key.empty() || !client_key.empty()))
    usage_error("--insecure takes no keys: give either --insecure or --server-key and --client-key");
  if (!insecure && (server_key.empty() || client_key.empty()))
    usage_error("CURVE needs --server-key (the daemon's NAME.key) and --client-key (this client's NAME.key_secret), "
                "or --insecure for a daemon started with --insecure");
  std::string metrics_host;
  int metrics_port = 0;
  if (!metrics.empty()) {
    const auto colon = metrics.rfind(':');
    try {
      metrics_port = colon == std::string::npos ? 0 : std::stoi(metrics.substr(colon + 1));
    } catch (const std::exception&) {
    }
    if (colon == std::string::npos || colon == 0 || metrics_port < 1 || metrics_port > 65535)
      usage_error("--metrics " + metrics + ": give the daemon's metrics address as IPv4:PORT, e.g. 127.0.0.1:9464");
    metrics_host = metrics.substr(0, colon);
    bool answered = false;  // a daemon just started binds its metrics listener right after its endpoint
    for (int i = 0; i < 20 && !(answered = b::http_get(metrics_host, metrics_port, "/metrics").has_value()); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!answered)
      usage_error("--metrics " + metrics + ": no /metrics answered there (is the daemon's metrics_listen that address?)");
  }
  if (name.empty()) name = std::filesystem::path(model).lexically_normal().filename().string();
  if (name.empty()) name = std::filesystem::path(model).lexically_normal().parent_path().filename().string();

  raise_fd_limit();
  try {
    torch::NoGradGuard ng;
    const auto dev = duet::parse_device(edge_device);
    const auto dt = duet::parse_dtype(dtype);
    const auto wire_dt = duet::to_wire_dtype(wire.empty() ? dt : duet::parse_dtype(wire));
    duet::Checkpoint ck(model);
    const auto& cfg = ck.config();
    const int64_t max_pos = prompt_len + new_tokens;
    if (cfg.max_positions > 0 && max_pos > cfg.max_positions)
      usage_error("--prompt-len + --new-tokens = " + std::to_string(max_pos) + " exceeds the model's " +
                  std::to_string(cfg.max_positions) + " positions");
    auto edge = duet::EdgePieces::load(ck, duet::LoadOptions{dt, dev});
    const std::string fingerprint = duet::model_fingerprint(ck);

    duet::edge::ConnectionOptions co;
    co.endpoint = endpoint;
    co.insecure = insecure;
    co.client_secret_key = client_key;
    co.server_public_key = server_key;
    co.client_name = "duet-load";
    co.wire_dtype = wire_dt;
    co.timeout = std::chrono::milliseconds(timeout_ms);
    co.spin = std::chrono::microseconds(spin_us);

    // ---- phase 1: references, one single-session greedy run per distinct prompt ----
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(cfg.vocab_size - 1));
    std::vector<Reference> refs(static_cast<size_t>(prompts));
    duet::GenerationOptions go;
    go.max_new_tokens = new_tokens;
    go.max_positions = max_pos;  // greedy, no stop ids: exactly new_tokens tokens
    {
      duet::edge::CloudConnection conn(co, fingerprint);
      for (auto& r : refs) {
        r.prompt.resize(size_t(prompt_len));
        for (auto& t : r.prompt) t = pick(rng);
        duet::edge::RemoteBackbone remote(conn, static_cast<uint32_t>(max_pos));
        RecordingBackbone rec(remote);
        auto res = duet::generate(edge, rec, r.prompt, go, dev);
        r.tokens = res.tokens;
        r.hidden = torch::cat(rec.rows);  // [T, H]
        for (size_t i = 1; i < res.steps.size(); ++i) r.step_ms.push_back(res.steps[i].backbone_ms);
        // the rows a free-running edge sends: prompt at 0.., then token j at position P + j
        const auto pids = torch::tensor(std::vector<int64_t>(r.prompt.begin(), r.prompt.end()), torch::kLong).to(dev);
        r.prefill = frame_bytes(edge.embedding->forward(pids, 0), wire_dt);
        if (new_tokens > 1) {
          const auto tids =
              torch::tensor(std::vector<int64_t>(r.tokens.begin(), r.tokens.end() - 1), torch::kLong).to(dev);
          r.decode = frame_bytes(edge.embedding->forward(tids, prompt_len), wire_dt);
        }
      }
    }
    std::vector<double> ref_ms;
    for (const auto& r : refs) ref_ms.insert(ref_ms.end(), r.step_ms.begin(), r.step_ms.end());
    // the batched head on the reference's own rows: a disagreement here is edge-head numerics
    int64_t head_flips = 0;
    for (const auto& r : refs) head_flips += b::check_rows(edge, r.hidden.to(dev), r.tokens, 0).mismatches;
    std::fprintf(stderr, "[load] %zu reference runs of %lld tokens; single-session decode round trip p50 %.3f ms\n",
                 refs.size(), (long long)new_tokens, duet::percentile(ref_ms, 0.5, -1));

    json out;
    out["name"] = name;
    out["spin_us"] = spin_us;
    out["model"] = model;
    out["model_type"] = cfg.model_type;
    out["layers"] = cfg.num_layers;
    out["hidden"] = cfg.hidden_size;
    out["dtype"] = duet::dtype_name(dt);
    out["wire_dtype"] = std::string(duet::protocol::dtype_name(wire_dt));
    out["edge_device"] = edge_device;
    out["gpu"] = b::gpu_name();
    out["endpoint"] = endpoint;
    out["curve"] = !insecure;
    out["prompts"] = prompts;
    out["prompt_len"] = prompt_len;
    out["new_tokens"] = new_tokens;
    out["decode_steps_per_session"] = new_tokens - 1;
    out["stagger_ms"] = stagger_ms;
    out["warmup_steps"] = warmup_steps;
    out["seed"] = seed;
    out["reference"] = {{"token_ms_p50", duet::percentile(ref_ms, 0.5, -1)},
                        {"token_ms_p99", duet::percentile(ref_ms, 0.99, -1)},
                        {"batched_head_disagreements", head_flips}};
    json runs = json::array();
    bool bad = false;

    std::printf("\n%s (%s, %lld layers, hidden %lld; %s, wire %s; prompt %lld, %lld new, %lld prompts; %s)\n", name.c_str(),
                cfg.model_type.c_str(), (long long)cfg.num_layers, (long long)cfg.hidden_size, dtype.c_str(),
                std::string(duet::protocol::dtype_name(wire_dt)).c_str(), (long long)prompt_len, (long long)new_tokens,
                (long long)prompts, insecure ? "plain TCP" : "CURVE");
    std::printf("single-session reference (real edge): decode p50 %.3f ms, p99 %.3f ms\n",
                duet::percentile(ref_ms, 0.5, -1), duet::percentile(ref_ms, 0.99, -1));
    std::printf("%6s %10s %9s %9s %11s %10s %9s %10s %8s %9s %8s %8s %8s\n", "N", "tok/s", "p50 ms", "p99 ms",
                "prefill ms", "cloud ms", "ok/N", "mismatch", "GPU MiB", "rows/step", "live", "step ms", "wait ms");

    for (const int64_t n64 : sessions) {
      const size_t n = size_t(n64);
      std::vector<b::SessionScript> scripts(n);
      for (size_t i = 0; i < n; ++i) {
        const auto& r = refs[i % refs.size()];
        scripts[i] = {r.prefill.data(), r.decode.data(), uint32_t(prompt_len), uint32_t(new_tokens - 1)};
      }
      b::RunOptions ro;
      ro.conn = co;
      ro.fingerprint = fingerprint;
      ro.max_positions = uint32_t(max_pos);
      ro.stagger_ms = stagger_ms;
      if (warmup_steps > 0) {  // e.g. a batched daemon's graph capture for this batch size
        auto w = scripts;
        for (auto& s : w) s.steps = std::min<uint32_t>(s.steps, uint32_t(warmup_steps));
        const auto wr = b::run_sessions(w, ro);
        for (const auto& s : wr.sessions)
          if (!s.error.empty()) {
            std::fprintf(stderr, "[load] warm-up at N=%zu: %s\n", n, s.error.c_str());
            break;
          }
      }
      double daemon_mib = -1;
      if (daemon_pid > 0) ro.while_open = [&] { daemon_mib = b::process_gpu_mib(pid_t(daemon_pid)); };
      const auto before = metrics_port ? read_step_counters(metrics_host, metrics_port) : std::nullopt;
      const auto run = b::run_sessions(scripts, ro);
      const auto after = before ? read_step_counters(metrics_host, metrics_port) : std::nullopt;
      const json steps = after ? step_figures(*before, *after) : json();

      // ---- phase 3: every returned row through norm + head; argmax == the reference ----
      // (each argmax equal means a free-running greedy edge would have sent exactly these rows)
      std::vector<b::RowCheck> checks;
      if (!no_check) {
        for (size_t i = 0; i < n; ++i) {
          const auto& s = run.sessions[i];
          if (!s.error.empty()) {
            checks.emplace_back();
            continue;
          }
          const auto& r = refs[i % refs.size()];
          const auto rows = b::rows_from_bytes(s.hidden, cfg.hidden_size, wire_dt, dev, dt);
          checks.push_back(b::check_rows(edge, rows, r.tokens, tolerance, r.hidden));
        }
      }
      auto j = summarize(n, run, checks, daemon_mib);
      if (!steps.is_null()) j["daemon_steps"] = steps;
      const bool run_bad = j["sessions_failed"].get<int64_t>() > 0 || j["mismatches_beyond_tolerance"].get<int64_t>() > 0;
      bad = bad || run_bad;
      const std::string mib = daemon_mib < 0 ? "-" : std::to_string(int64_t(daemon_mib));
      auto fig = [&](const char* k, const char* fmt) {
        char buf[32] = "-";
        if (!steps.is_null()) std::snprintf(buf, sizeof buf, fmt, steps[k].get<double>());
        return std::string(buf);
      };
      std::printf("%6zu %10.1f %9.3f %9.3f %11.2f %10.3f %4lld/%-4zu %10lld %8s %9s %8s %8s %8s\n", n,
                  j["aggregate_tok_s"].get<double>(), j["token_ms_p50"].get<double>(), j["token_ms_p99"].get<double>(),
                  j["prefill_ms_p50"].get<double>(), j["cloud_token_ms_p50"].get<double>(),
                  (long long)j["sessions_ok"].get<int64_t>(), n, (long long)j["mismatched_steps"].get<int64_t>(),
                  mib.c_str(), fig("rows_per_step", "%.1f").c_str(), fig("live_sessions_per_step", "%.1f").c_str(),
                  fig("step_ms", "%.3f").c_str(), fig("wait_ms_per_step", "%.3f").c_str());
      if (!steps.is_null())
        std::printf("       daemon hand-overs: socket thread -> engine %.3f ms, engine reply -> sent %.3f ms (per message)\n",
                    steps["handoff_in_ms"].get<double>(), steps["handoff_out_ms"].get<double>());
      for (const auto& e : j["errors"]) std::printf("       %s\n", e.get<std::string>().c_str());
      std::fflush(stdout);
      runs.push_back(std::move(j));
      out["runs"] = runs;
      if (!json_path.empty()) std::ofstream(json_path) << out.dump(1) << "\n";  // after each N: a later timeout keeps it
    }
    if (head_flips)
      std::printf("note: the batched LM head disagrees with the step-by-step reference on %lld rows (edge numerics)\n",
                  (long long)head_flips);
    if (bad) std::printf("FAILED: a session failed, or its tokens differ from the single-session reference\n");
    return bad ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "duet-load: " << e.what() << "\n";
    return 1;
  }
}
