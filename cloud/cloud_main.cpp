// duet-cloud: the daemon that runs a model's transformer blocks for edge clients.
//   duet-cloud --config configs/cloud.toml [overrides]
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <thread>

#include "cloud/cloud_config.hpp"
#include "cloud/server.hpp"

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

// The last resort of "stopped within 1 s of SIGTERM": the server stops a step between blocks,
// but one block of a huge prefill on a slow CPU can take seconds. Once stopping has taken
// kStopLimit, the process exits at once (its clients see the connection close; edges resume when
// they reconnect); a normal stop takes a fraction of that and ends the watchdog first.
class StopWatchdog {
 public:
  static constexpr auto kStopLimit = std::chrono::milliseconds(700);
  StopWatchdog() : thread_([this] { watch(); }) {}
  ~StopWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!done_ && !g_stop.load()) cv_.wait_for(lock, std::chrono::milliseconds(20));
    if (done_ || cv_.wait_for(lock, kStopLimit, [this] { return done_; })) return;  // stopped in time
    spdlog::warn("still stopping {} ms after the signal (a long step under way): exiting now", kStopLimit.count());
    spdlog::default_logger()->flush();
    std::fflush(stdout);
    std::_Exit(0);
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-cloud: serves a model's transformer blocks to duet edge clients over CurveZMQ"};
  std::string config_path;
  app.add_option("-c,--config", config_path, "TOML config file (see configs/cloud.toml)")->check(CLI::ExistingFile);
  duet::cloud::CloudConfig o;  // overrides, applied after the file
  std::string model, listen, secret, authorized, devices, plan, dtype, log_level = "info";
  std::vector<std::string> wire;
  bool insecure = false;
  int64_t max_sessions = -1, max_pos = -1, max_fwd = -1, kv_mb = -1, idle_s = -1, msg_mb = -1;
  int64_t batch_tokens = -1, batch_rows = -1, chunk = -1, batch_wait = -1;
  std::string metrics_listen, metrics_token_file;
  int64_t hs_ms = -1, max_hs = -1, max_hs_src = -1, pending_mb = -1, stall_ms = -1, sndq = -1;
  int64_t key_sessions = -1, queued_mb = -1, queued_key_mb = -1, min_prefill = -1;
  double key_kv = -1, latency_factor = -1;
  int64_t io_threads = -1, max_step_ms = -1, spin_us = -1;
  double wait_fraction = -1;
  int64_t in_flight = -1;
  app.add_option("--model", model, "model folder (config.json + safetensors)");
  app.add_option("--listen", listen, "ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:7700 (port * = any free)");
  app.add_option("--secret-key", secret, "the server's NAME.key_secret (duet-keygen)");
  app.add_option("--authorized-keys", authorized, "folder of client NAME.key files allowed to connect");
  app.add_flag("--insecure", insecure, "plain TCP without CURVE (warns; trusted networks and tests only)");
  app.add_option("--devices", devices, "comma-separated devices for the automatic plan, e.g. cuda:0,cuda:1 or cpu,cpu");
  app.add_option("--plan", plan, "'auto' or explicit DEVICE[@WORKER]=FIRST-LAST,... (inclusive layer ranges; @WORKER: a duet-stage worker; DEVICE@WORKER=auto: the workers' layers split by the memory each offers)");
  app.add_option("--dtype", dtype, "compute dtype: fp32, fp16, bf16");
  int64_t first_block = -1;
  app.add_option("--first-block", first_block,
                 "run blocks FIRST.. only: edges keep blocks 0..FIRST-1 (duet-edge --edge-blocks FIRST) and send "
                 "their output instead of the token embeddings");
  app.add_option("--wire-dtypes", wire, "activation dtypes accepted on the wire (fp32, fp16, bf16, int8)")->delimiter(',');
  app.add_option("--max-sessions", max_sessions, "open sessions at most");
  app.add_option("--max-positions", max_pos, "positions per session at most");
  app.add_option("--max-forward", max_fwd, "positions per forward at most");
  app.add_option("--kv-memory-mb", kv_mb, "KV cache budget over all sessions, MiB");
  app.add_option("--idle-timeout", idle_s, "seconds after which an idle session is closed");
  app.add_option("--max-message-mb", msg_mb, "largest message accepted, MiB");
  app.add_option("--max-batch-tokens", batch_tokens, "positions in one engine step, decode and prefill together");
  app.add_option("--max-batch-rows", batch_rows, "sessions in one engine step");
  app.add_option("--prefill-chunk", chunk, "positions of one forward in one step, at most");
  app.add_option("--batch-wait-us", batch_wait, "wait this long at most for lately decoding sessions to fill a step");
  app.add_option("--batch-wait-step-fraction", wait_fraction,
                 "or wait up to this fraction of a measured decode-only step, when that is longer (default 0.5; 0: off)");
  app.add_option("--steps-in-flight", in_flight,
                 "steps of disjoint sessions in flight at once, stages pipelined (0: one per stage when stage "
                 "workers run some stages, else 1)");
  app.add_option("--io-threads", io_threads,
                 "ZeroMQ I/O threads doing the connections' CURVE work (0: a quarter of the cores, 1 to 4)");
  app.add_option("--spin-us", spin_us,
                 "the socket and engine threads poll without sleeping this long after each message or step, "
                 "sparing wake-ups at the cost of two busy cores (default 0: off)");
  app.add_option("--step-latency-factor", latency_factor,
                 "a step carrying decode rows lasts at most this many decode-only steps: its prefill is cut to fit "
                 "(default 1.1; 0: no cap)");
  app.add_option("--max-step-ms", max_step_ms, "no step's prefill makes it last longer than this (default 250; 0: no cap)");
  app.add_option("--min-prefill-tokens", min_prefill, "prefill positions a step carries at least when prompts wait");
  app.add_option("--key-max-sessions", key_sessions,
                 "sessions one client key may hold (default: half of --max-sessions when several keys may connect, "
                 "else all; 0: no per-key limit)");
  app.add_option("--key-kv-share", key_kv,
                 "share of the KV pool one client key may hold, in (0, 1] (default: 0.5 when several keys may "
                 "connect, else 1)");
  app.add_option("--max-queued-mb", queued_mb, "request bytes queued in the daemon at most, all keys together, MiB");
  app.add_option("--max-queued-mb-per-key", queued_key_mb, "request bytes one client key may have queued, MiB");
  app.add_option("--metrics-listen", metrics_listen, "HOST:PORT for Prometheus text metrics at /metrics (off by default)");
  app.add_option("--metrics-token-file", metrics_token_file,
                 "file whose first line is a bearer token /metrics then requires (Authorization: Bearer TOKEN)");
  app.add_option("--handshake-timeout-ms", hs_ms, "a connection must finish CURVE + ZAP within this");
  app.add_option("--max-handshaking", max_hs, "connections still in their handshake at once, from anywhere");
  app.add_option("--max-handshaking-per-source", max_hs_src,
                 "connections still in their handshake at once from one source address (IPv4, IPv6 /64)");
  app.add_option("--max-pending-input-mb", pending_mb, "input per connection not yet a whole message, MiB");
  app.add_option("--reply-stall-timeout-ms", stall_ms, "disconnect a peer whose reply queue stays full this long");
  app.add_option("--send-queue", sndq, "replies queued per peer before they are dropped");
  std::string cluster_address;
  int64_t cluster_port = -1, stage_timeout = -1;
  bool cluster_wildcard = false;
  app.add_option("--cluster-address", cluster_address,
                 "this machine's address on the cluster network, for stage workers (plan items DEVICE@WORKER=FIRST-LAST; "
                 "not encrypted: never where edges connect)");
  app.add_option("--cluster-port", cluster_port, "port of the c10d store stage workers meet at (0: any free one)");
  app.add_flag("--cluster-allow-wildcard-store", cluster_wildcard,
               "accept a LibTorch (< 2.4) whose c10d store listens on every interface; firewall its port");
  app.add_option("--stage-timeout-ms", stage_timeout, "a step or heartbeat unanswered this long loses the stage workers");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  // every number above is a count, a size, a time or a share: a negative one is refused, naming
  // the flag (the -1 each starts at only means "not given", and was taken as that)
  const CLI::Validator non_negative(
      [](std::string& v) { return !v.empty() && v[0] == '-' ? "give 0 or more, not " + v : std::string(); }, "");
  for (auto* opt : app.get_options())
    if (opt->get_type_name() == "INT" || opt->get_type_name() == "FLOAT") opt->check(non_negative);
  CLI11_PARSE(app, argc, argv);

  try {
    spdlog::set_level(spdlog::level::from_str(log_level));
    spdlog::set_pattern("[%H:%M:%S.%e] [cloud] [%^%l%$] %v");
    duet::cloud::CloudConfig cfg;
    if (!config_path.empty()) cfg = duet::cloud::CloudConfig::from_toml_file(config_path);
    if (!model.empty()) cfg.model_path = model;
    if (!listen.empty()) cfg.listen = listen;
    if (!secret.empty()) cfg.secret_key = secret;
    if (!authorized.empty()) cfg.authorized_keys = authorized;
    if (insecure) cfg.insecure = true;
    if (!devices.empty()) {
      cfg.devices.clear();
      std::stringstream ss(devices);
      for (std::string d; std::getline(ss, d, ',');) cfg.devices.push_back(d);
    }
    if (!plan.empty()) cfg.plan = plan;
    if (!cluster_address.empty()) cfg.cluster_address = cluster_address;
    if (cluster_port >= 0) cfg.cluster_port = static_cast<uint32_t>(cluster_port);
    if (cluster_wildcard) cfg.cluster_allow_wildcard_store = true;
    if (stage_timeout >= 0) cfg.stage_timeout_ms = static_cast<uint32_t>(stage_timeout);
    if (first_block >= 0) cfg.first_block = first_block;
    if (!dtype.empty()) cfg.dtype = dtype;
    if (!wire.empty()) cfg.wire_dtypes = wire;
    if (max_sessions >= 0) cfg.max_sessions = static_cast<uint32_t>(max_sessions);
    if (max_pos >= 0) cfg.max_positions_per_session = static_cast<uint32_t>(max_pos);
    if (max_fwd >= 0) cfg.max_positions_per_forward = static_cast<uint32_t>(max_fwd);
    if (kv_mb >= 0) cfg.kv_memory_mb = static_cast<uint64_t>(kv_mb);
    if (idle_s >= 0) cfg.idle_timeout_s = static_cast<uint32_t>(idle_s);
    if (msg_mb >= 0) cfg.max_message_mb = static_cast<uint64_t>(msg_mb);
    if (batch_tokens >= 0) cfg.max_batch_tokens = batch_tokens;
    if (batch_rows >= 0) cfg.max_batch_rows = batch_rows;
    if (chunk >= 0) cfg.prefill_chunk = chunk;
    if (batch_wait >= 0) cfg.batch_wait_us = batch_wait;
    if (wait_fraction >= 0) cfg.batch_wait_step_fraction = wait_fraction;
    if (in_flight >= 0) cfg.steps_in_flight = static_cast<uint32_t>(in_flight);
    if (!metrics_listen.empty()) cfg.metrics_listen = metrics_listen;
    if (io_threads >= 0) cfg.io_threads = static_cast<uint32_t>(io_threads);
    if (spin_us >= 0) cfg.spin_us = static_cast<uint32_t>(spin_us);
    if (latency_factor >= 0) cfg.step_latency_factor = latency_factor;
    if (min_prefill >= 0) cfg.min_prefill_tokens = min_prefill;
    if (max_step_ms >= 0) cfg.max_step_ms = static_cast<uint32_t>(max_step_ms);
    if (key_sessions >= 0) cfg.key_max_sessions = static_cast<uint32_t>(key_sessions);
    if (key_kv >= 0) cfg.key_kv_share = key_kv;
    if (queued_mb >= 0) cfg.max_queued_mb = static_cast<uint64_t>(queued_mb);
    if (queued_key_mb >= 0) cfg.max_queued_mb_per_key = static_cast<uint64_t>(queued_key_mb);
    if (!metrics_token_file.empty()) cfg.metrics_token_file = metrics_token_file;
    if (hs_ms >= 0) cfg.handshake_timeout_ms = static_cast<uint32_t>(hs_ms);
    if (max_hs >= 0) cfg.max_handshaking = static_cast<uint32_t>(max_hs);
    if (max_hs_src >= 0) cfg.max_handshaking_per_source = static_cast<uint32_t>(max_hs_src);
    if (pending_mb >= 0) cfg.max_pending_input_mb = static_cast<uint64_t>(pending_mb);
    if (stall_ms >= 0) cfg.reply_stall_timeout_ms = static_cast<uint32_t>(stall_ms);
    if (sndq >= 0) cfg.send_queue_messages = static_cast<uint32_t>(sndq);

    StopWatchdog watchdog;  // outlives the server: its destruction is part of stopping
    duet::cloud::Server server(cfg);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::printf("listening on %s\n", server.endpoint().c_str());
    std::fflush(stdout);
    server.run(g_stop);
    spdlog::info("stopped cleanly");
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
