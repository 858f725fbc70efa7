// duet-cloud: the daemon that runs a model's transformer blocks for edge clients.
//   duet-cloud --config configs/cloud.toml [overrides]
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <sstream>

#include "cloud/cloud_config.hpp"
#include "cloud/server.hpp"

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }
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
  std::string metrics_listen;
  int64_t hs_ms = -1, max_hs = -1, pending_mb = -1, stall_ms = -1, sndq = -1;
  app.add_option("--model", model, "model folder (config.json + safetensors)");
  app.add_option("--listen", listen, "ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:7700 (port * = any free)");
  app.add_option("--secret-key", secret, "the server's NAME.key_secret (duet-keygen)");
  app.add_option("--authorized-keys", authorized, "folder of client NAME.key files allowed to connect");
  app.add_flag("--insecure", insecure, "plain TCP without CURVE (warns; trusted networks and tests only)");
  app.add_option("--devices", devices, "comma-separated devices for the automatic plan, e.g. cuda:0,cuda:1 or cpu,cpu");
  app.add_option("--plan", plan, "'auto' or explicit DEVICE[@WORKER]=FIRST-LAST,... (inclusive layer ranges; @WORKER: a duet-stage worker)");
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
  app.add_option("--metrics-listen", metrics_listen, "HOST:PORT for Prometheus text metrics at /metrics (off by default)");
  app.add_option("--handshake-timeout-ms", hs_ms, "a connection must finish CURVE + ZAP within this");
  app.add_option("--max-handshaking", max_hs, "connections still in their handshake at once");
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
    if (!metrics_listen.empty()) cfg.metrics_listen = metrics_listen;
    if (hs_ms >= 0) cfg.handshake_timeout_ms = static_cast<uint32_t>(hs_ms);
    if (max_hs >= 0) cfg.max_handshaking = static_cast<uint32_t>(max_hs);
    if (pending_mb >= 0) cfg.max_pending_input_mb = static_cast<uint64_t>(pending_mb);
    if (stall_ms >= 0) cfg.reply_stall_timeout_ms = static_cast<uint32_t>(stall_ms);
    if (sndq >= 0) cfg.send_queue_messages = static_cast<uint32_t>(sndq);

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
