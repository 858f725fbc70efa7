#pragma once
// The daemon's settings: a TOML file (configs/cloud.toml) with command-line overrides.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/setting_table.hpp"

namespace duet::cloud {

struct CloudConfig {
  // [model]
  std::string model_path;
  std::string dtype = "fp32";
  // [server]
  std::string listen = "tcp://127.0.0.1:7700";
  std::string name = "duet-cloud";
  bool insecure = false;
  std::string secret_key;       // NAME.key_secret of the server
  std::string authorized_keys;  // folder of client NAME.key files
  std::vector<std::string> wire_dtypes = {"fp32", "fp16", "bf16", "int8"};
  std::string metrics_listen;   // HOST:PORT for Prometheus' /metrics; empty: off
  uint32_t io_threads = 0;      // ZeroMQ I/O threads (CURVE work of the connections); 0: a quarter of the cores, 1-4
  std::string metrics_token_file;  // its first line: the bearer token /metrics requires; empty: none
  uint32_t spin_us = 0;  // socket and engine threads poll without sleeping this long after activity (0: off)
  // [stages]
  std::vector<std::string> devices = {"cpu"};
  std::string plan = "auto";  // or "DEVICE=FIRST-LAST,..." with inclusive layer ranges
  int64_t first_block = 0;    // run blocks [first_block, layers): the edges keep the first ones (--edge-blocks)
  // stage workers on other hosts (plan items DEVICE@WORKER=FIRST-LAST; docs/STAGES.md)
  std::string cluster_address;             // this machine's address on the cluster network (never a wildcard)
  uint32_t cluster_port = 7710;            // the c10d store workers meet at (0: any free port, printed)
  bool cluster_allow_wildcard_store = false;  // LibTorch < 2.4: its store listens on every interface
  uint32_t stage_timeout_ms = 10000;       // a step or heartbeat unanswered this long loses the workers
  uint32_t stage_heartbeat_ms = 1000;      // heartbeat period while no step is in flight
  // [limits]
  uint32_t max_sessions = 64;
  uint32_t max_positions_per_session = 4096;  // capped by the model's own limit
  uint32_t max_positions_per_forward = 2048;
  uint64_t kv_memory_mb = 4096;
  uint32_t idle_timeout_s = 300;
  uint64_t max_message_mb = 64;
  // [scheduler] one step = every waiting decode position + prefill chunks up to the budget
  int64_t max_batch_tokens = 2048;
  int64_t max_batch_rows = 256;
  int64_t prefill_chunk = 512;
  int64_t batch_wait_us = 0;  // wait this long at most for the sessions that decoded lately (0: never)
  double batch_wait_step_fraction = 0.5;  // or this fraction of a measured decode-only step, if longer
  uint32_t steps_in_flight = 0;  // steps of disjoint sessions in flight (0: one per stage with workers, else 1)
  double step_latency_factor = 1.1;  // a step with decode rows lasts at most this many decode-only steps (0: no cap)
  uint32_t max_step_ms = 250;        // no step's prefill makes it last longer than this (0: no cap)
  int64_t min_prefill_tokens = 1;    // a step with prefill waiting carries at least this many
  // [quotas] per client key (allow-list NAME). Not set: the fair default — when more than one
  // key can connect (or without CURVE, where each connection is its own owner) no key holds more
  // than half the sessions or half the KV pool; with one key, that key may use all of it.
  // max_sessions 0 / kv_share 1.0 set explicitly: only the daemon's limits.
  struct KeyQuota {
    std::optional<uint32_t> max_sessions;
    std::optional<double> kv_share;
  };
  std::optional<uint32_t> key_max_sessions;
  std::optional<double> key_kv_share;
  std::map<std::string, KeyQuota> key_quotas;  // [quotas.keys.NAME]; what a key leaves unset is the default
  // [limits] request bytes queued (in the inbox, behind a session's running forward, or running)
  uint64_t max_queued_mb = 1024;        // all keys together
  uint64_t max_queued_mb_per_key = 256;  // one key
  // [connections] what one TCP connection may hold (see cloud/connection_guard.hpp)
  uint32_t handshake_timeout_ms = 3000;   // CURVE + ZAP must finish within this (ZMQ_HANDSHAKE_IVL)
  uint32_t max_handshaking = 512;         // connections still in their handshake at once, from anywhere
  uint32_t max_handshaking_per_source = 8;  // the same from one source address (IPv4, IPv6 /64)
  uint64_t max_pending_input_mb = 256;    // input received but not yet a whole message, per connection
  uint32_t reply_stall_timeout_ms = 5000; // a peer whose queue stays full this long is disconnected
  uint32_t send_queue_messages = 1000;    // replies queued per peer before they are dropped (ZMQ_SNDHWM)

  // Reads a TOML file; relative paths in it are taken from the file's folder. Unknown keys and
  // wrong types are errors that name the file, the key and what was expected.
  static CloudConfig from_toml_file(const std::string& path);
  void validate() const;  // throws std::invalid_argument naming the setting
  // The default quota and the per-key ones with the fair default filled in: `client_keys` is the
  // allow-list's size (0: without CURVE, any number of owners).
  struct ResolvedQuota {
    uint32_t max_sessions = 0;
    double kv_share = 1.0;
  };
  ResolvedQuota default_quota(size_t client_keys) const;
  std::map<std::string, ResolvedQuota> key_quotas_resolved(size_t client_keys) const;
};

// The daemon's settings table (common/setting_table.hpp): each setting's TOML key, flag, help and
// rule, declared once; from_toml_file and duet-cloud's flags come from it. test_configs checks
// that configs/cloud.toml and --help name every row.
using CloudSetting = settings::Setting<CloudConfig>;
const std::vector<CloudSetting>& cloud_settings();

}  // namespace duet::cloud
