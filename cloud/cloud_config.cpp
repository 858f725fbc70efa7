#include "cloud/cloud_config.hpp"

#include <algorithm>
#include <stdexcept>

#include "common/setting_file.hpp"
#include "common/spin_window.hpp"
#include "common/toml_file.hpp"

namespace duet::cloud {

namespace {

using C = CloudConfig;
using settings::a_path;
using settings::above;
using settings::within;

const std::vector<CloudSetting> kSettings = {
    {"model", "path", "--model", "model folder (config.json + safetensors)", DUET_SLOT(C, model_path), a_path()},
    {"model", "dtype", "--dtype", "compute dtype: fp32, fp16, bf16", DUET_SLOT(C, dtype)},
    {"server", "listen", "--listen", "ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:7700 (port * = any free)",
     DUET_SLOT(C, listen)},
    {"server", "name", "", "the name the daemon gives in its hello reply", DUET_SLOT(C, name)},
    {"server", "insecure", "--insecure", "plain TCP without CURVE (warns; trusted networks and tests only)",
     DUET_SLOT(C, insecure)},
    {"server", "secret_key", "--secret-key", "the server's NAME.key_secret (duet-keygen)", DUET_SLOT(C, secret_key), a_path()},
    {"server", "authorized_keys", "--authorized-keys", "folder of client NAME.key files allowed to connect",
     DUET_SLOT(C, authorized_keys), a_path()},
    {"server", "wire_dtypes", "--wire-dtypes", "activation dtypes accepted on the wire (fp32, fp16, bf16, int8)",
     DUET_SLOT(C, wire_dtypes)},
    {"server", "metrics_listen", "--metrics-listen", "HOST:PORT for Prometheus text metrics at /metrics (off by default)",
     DUET_SLOT(C, metrics_listen)},
    {"server", "io_threads", "--io-threads",
     "ZeroMQ I/O threads doing the connections' CURVE work (0: a quarter of the cores, 1 to 4)", DUET_SLOT(C, io_threads)},
    {"server", "metrics_token_file", "--metrics-token-file",
     "file whose first line is a bearer token /metrics then requires (Authorization: Bearer TOKEN)",
     DUET_SLOT(C, metrics_token_file), a_path()},
    {"server", "spin_us", "--spin-us",
     "the socket and engine threads poll without sleeping this long after each message or step, sparing "
     "wake-ups at the cost of two busy cores (default 0: off)",
     DUET_SLOT(C, spin_us), within(0, kMaxSpinUs, "microseconds")},
    {"stages", "devices", "--devices", "comma-separated devices for the automatic plan, e.g. cuda:0,cuda:1 or cpu,cpu",
     DUET_SLOT(C, devices)},
    {"stages", "plan", "--plan",
     "'auto' or explicit DEVICE[@WORKER]=FIRST-LAST,... (inclusive layer ranges; @WORKER: a duet-stage worker; "
     "DEVICE@WORKER=auto: the workers' layers split by the memory each offers)",
     DUET_SLOT(C, plan)},
    {"stages", "first_block", "--first-block",
     "run blocks FIRST.. only: edges keep blocks 0..FIRST-1 (duet-edge --edge-blocks FIRST) and send their output "
     "instead of the token embeddings",
     DUET_SLOT(C, first_block)},
    {"stages", "cluster_address", "--cluster-address",
     "this machine's address on the cluster network, for stage workers (plan items DEVICE@WORKER=FIRST-LAST; not "
     "encrypted: never where edges connect)",
     DUET_SLOT(C, cluster_address)},
    {"stages", "cluster_port", "--cluster-port", "port of the c10d store stage workers meet at (0: any free one)",
     DUET_SLOT(C, cluster_port), within(0, 65535)},
    {"stages", "cluster_allow_wildcard_store", "--cluster-allow-wildcard-store",
     "accept a LibTorch (< 2.4) whose c10d store listens on every interface; firewall its port",
     DUET_SLOT(C, cluster_allow_wildcard_store)},
    {"stages", "stage_timeout_ms", "--stage-timeout-ms", "a step or heartbeat unanswered this long loses the stage workers",
     DUET_SLOT(C, stage_timeout_ms)},
    {"stages", "stage_heartbeat_ms", "--stage-heartbeat-ms", "heartbeat period to the stage workers while no step is in flight",
     DUET_SLOT(C, stage_heartbeat_ms)},
    {"limits", "max_sessions", "--max-sessions", "open sessions at most", DUET_SLOT(C, max_sessions)},
    {"limits", "max_positions_per_session", "--max-positions", "positions per session at most",
     DUET_SLOT(C, max_positions_per_session)},
    {"limits", "max_positions_per_forward", "--max-forward", "positions per forward at most",
     DUET_SLOT(C, max_positions_per_forward)},
    {"limits", "kv_memory_mb", "--kv-memory-mb", "KV cache budget over all sessions, MiB", DUET_SLOT(C, kv_memory_mb)},
    {"limits", "idle_timeout_s", "--idle-timeout", "seconds after which an idle session is closed", DUET_SLOT(C, idle_timeout_s)},
    {"limits", "max_message_mb", "--max-message-mb", "largest message accepted, MiB", DUET_SLOT(C, max_message_mb)},
    {"limits", "max_queued_mb", "--max-queued-mb", "request bytes queued in the daemon at most, all keys together, MiB",
     DUET_SLOT(C, max_queued_mb)},
    {"limits", "max_queued_mb_per_key", "--max-queued-mb-per-key", "request bytes one client key may have queued, MiB",
     DUET_SLOT(C, max_queued_mb_per_key)},
    {"scheduler", "max_batch_tokens", "--max-batch-tokens", "positions in one engine step, decode and prefill together",
     DUET_SLOT(C, max_batch_tokens)},
    {"scheduler", "max_batch_rows", "--max-batch-rows", "sessions in one engine step", DUET_SLOT(C, max_batch_rows)},
    {"scheduler", "prefill_chunk", "--prefill-chunk", "positions of one forward in one step, at most", DUET_SLOT(C, prefill_chunk)},
    {"scheduler", "batch_wait_us", "--batch-wait-us",
     "wait this long at most for lately decoding sessions to fill a step", DUET_SLOT(C, batch_wait_us)},
    {"scheduler", "batch_wait_step_fraction", "--batch-wait-step-fraction",
     "or wait up to this fraction of a measured decode-only step, when that is longer (default 0.5; 0: off)",
     DUET_SLOT(C, batch_wait_step_fraction)},
    {"scheduler", "steps_in_flight", "--steps-in-flight",
     "steps of disjoint sessions in flight at once, stages pipelined (0: one per stage when stage workers run some "
     "stages, else 1)",
     DUET_SLOT(C, steps_in_flight), within(0, 16)},
    {"scheduler", "step_latency_factor", "--step-latency-factor",
     "a step carrying decode rows lasts at most this many decode-only steps: its prefill is cut to fit (default "
     "1.1; 0: no cap)",
     DUET_SLOT(C, step_latency_factor)},
    {"scheduler", "max_step_ms", "--max-step-ms", "no step's prefill makes it last longer than this (default 250; 0: no cap)",
     DUET_SLOT(C, max_step_ms)},
    {"scheduler", "min_prefill_tokens", "--min-prefill-tokens",
     "prefill positions a step carries at least when prompts wait", DUET_SLOT(C, min_prefill_tokens)},
    {"quotas", "max_sessions_per_key", "--key-max-sessions",
     "sessions one client key may hold (default: half of --max-sessions when several keys may connect, else all; "
     "0: no per-key limit)",
     DUET_SLOT(C, key_max_sessions)},
    {"quotas", "kv_share_per_key", "--key-kv-share",
     "share of the KV pool one client key may hold, in (0, 1] (default: 0.5 when several keys may connect, else 1)",
     DUET_SLOT(C, key_kv_share), above(0, 1)},
    {"connections", "handshake_timeout_ms", "--handshake-timeout-ms", "a connection must finish CURVE + ZAP within this",
     DUET_SLOT(C, handshake_timeout_ms)},
    {"connections", "max_handshaking", "--max-handshaking", "connections still in their handshake at once, from anywhere",
     DUET_SLOT(C, max_handshaking)},
    {"connections", "max_handshaking_per_source", "--max-handshaking-per-source",
     "connections still in their handshake at once from one source address (IPv4, IPv6 /64)",
     DUET_SLOT(C, max_handshaking_per_source)},
    {"connections", "max_pending_input_mb", "--max-pending-input-mb",
     "input per connection not yet a whole message, MiB", DUET_SLOT(C, max_pending_input_mb)},
    {"connections", "reply_stall_timeout_ms", "--reply-stall-timeout-ms",
     "disconnect a peer whose reply queue stays full this long", DUET_SLOT(C, reply_stall_timeout_ms)},
    {"connections", "send_queue_messages", "--send-queue", "replies queued per peer before they are dropped",
     DUET_SLOT(C, send_queue_messages)},
};

}  // namespace

const std::vector<CloudSetting>& cloud_settings() { return kSettings; }

CloudConfig CloudConfig::from_toml_file(const std::string& path) {
  const toml::table root = parse_toml_file(path);
  CloudConfig c;
  settings::read_table(root, path, kSettings, {"quotas.keys"}, c);
  // [quotas.keys.NAME]: a table of its own per client key, read with the rows' rules
  const toml::node* keys = root.at_path("quotas.keys").node();
  if (!keys) return c;
  auto fail = [&](const std::string& key, const std::string& what) {
    throw std::invalid_argument(path + ": '" + key + "' " + what);
  };
  const toml::table* kt = keys->as_table();
  if (!kt) fail("quotas.keys", "must be a table of [quotas.keys.NAME] tables");
  for (auto&& [k, v] : *kt) {
    const std::string name(k.str()), sec = "quotas.keys." + name;
    const toml::table* q = v.as_table();
    if (!q) fail(sec, "must be a table with max_sessions and/or kv_share");
    KeyQuota kq;
    for (auto&& [qk, qv] : *q) {
      const std::string key(qk.str());
      if (key != "max_sessions" && key != "kv_share") fail(sec + "." + key, "is not a known setting");
      try {
        if (key == "max_sessions") settings::set_node(&kq.max_sessions, {}, qv, {});
        else settings::set_node(&kq.kv_share, above(0, 1), qv, {});
      } catch (const std::invalid_argument& e) {
        fail(sec + "." + key, e.what());
      }
    }
    c.key_quotas[name] = kq;
  }
  return c;
}

void CloudConfig::validate() const {
  auto bad = [](const std::string& what) { throw std::invalid_argument(what); };
  if (model_path.empty()) bad("no model: set [model] path or --model");
  if (!insecure && (secret_key.empty() || authorized_keys.empty()))
    bad("CURVE is on: set [server] secret_key and authorized_keys (or --secret-key/--authorized-keys), "
        "or pass --insecure to run without encryption");
  if (devices.empty()) bad("[stages] devices is empty");
  if (wire_dtypes.empty()) bad("[server] wire_dtypes is empty");
  if (max_sessions == 0) bad("[limits] max_sessions must be at least 1");
  if (max_positions_per_session == 0 || max_positions_per_forward == 0) bad("[limits] position limits must be at least 1");
  if (idle_timeout_s == 0) bad("[limits] idle_timeout_s must be at least 1");
  if (kv_memory_mb == 0) bad("[limits] kv_memory_mb must be at least 1: with no KV budget every session is refused");
  if (max_message_mb == 0) bad("[limits] max_message_mb must be at least 1");
  if (spin_us > kMaxSpinUs)
    bad("[server] spin_us is " + std::to_string(spin_us) + ": at most " + std::to_string(kMaxSpinUs) +
        " (0.1 s; it is a short busy wait, not a timeout)");
  if (!metrics_token_file.empty() && metrics_listen.empty())
    bad("[server] metrics_token_file is set but metrics_listen is empty: set both, or neither");
  if (handshake_timeout_ms == 0) bad("[connections] handshake_timeout_ms must be at least 1 (0 would let a silent "
                                     "connection hold a file descriptor forever)");
  if (max_handshaking == 0 || max_handshaking_per_source == 0)
    bad("[connections] max_handshaking and max_handshaking_per_source must be at least 1");
  if (max_handshaking_per_source > max_handshaking)
    bad("[connections] max_handshaking_per_source (" + std::to_string(max_handshaking_per_source) +
        ") is above max_handshaking (" + std::to_string(max_handshaking) + "): one source could take every slot");
  if (max_pending_input_mb < 2 * max_message_mb)
    bad("[connections] max_pending_input_mb (" + std::to_string(max_pending_input_mb) +
        ") must be at least twice [limits] max_message_mb (" + std::to_string(max_message_mb) +
        "): a connection may hold one whole message plus the next arriving");
  if (reply_stall_timeout_ms == 0) bad("[connections] reply_stall_timeout_ms must be at least 1");
  if (send_queue_messages == 0) bad("[connections] send_queue_messages must be at least 1");
  if (cluster_port > 65535) bad("[stages] cluster_port must be at most 65535");
  if (stage_timeout_ms == 0 || stage_heartbeat_ms == 0) bad("[stages] stage_timeout_ms and stage_heartbeat_ms must be at least 1");
  if (steps_in_flight > 16) bad("[scheduler] steps_in_flight must be 0 (automatic) to 16");
  if (max_batch_tokens < 1 || max_batch_rows < 1 || prefill_chunk < 1 || min_prefill_tokens < 1)
    bad("[scheduler] max_batch_tokens, max_batch_rows, prefill_chunk and min_prefill_tokens must be at least 1");
  if (!(step_latency_factor == 0 || step_latency_factor > 1.0))
    bad("[scheduler] step_latency_factor must be 0 (no cap) or more than 1, not " + std::to_string(step_latency_factor));
  if (max_queued_mb == 0 || max_queued_mb_per_key == 0)
    bad("[limits] max_queued_mb and max_queued_mb_per_key must be at least 1");
  if (max_queued_mb_per_key < max_message_mb || max_queued_mb < max_queued_mb_per_key)
    bad("[limits] need max_message_mb (" + std::to_string(max_message_mb) + ") <= max_queued_mb_per_key (" +
        std::to_string(max_queued_mb_per_key) + ") <= max_queued_mb (" + std::to_string(max_queued_mb) +
        "): else one largest message could never be queued");
  if (key_kv_share && (*key_kv_share <= 0 || *key_kv_share > 1.0)) bad("[quotas] kv_share_per_key must be in (0, 1]");
}

CloudConfig::ResolvedQuota CloudConfig::default_quota(size_t client_keys) const {
  const bool shared = client_keys != 1;  // 0: without CURVE every connection is an owner
  ResolvedQuota q;
  q.max_sessions = key_max_sessions.value_or(shared ? std::max<uint32_t>(1, (max_sessions + 1) / 2) : 0);
  q.kv_share = key_kv_share.value_or(shared ? 0.5 : 1.0);
  return q;
}

std::map<std::string, CloudConfig::ResolvedQuota> CloudConfig::key_quotas_resolved(size_t client_keys) const {
  const ResolvedQuota d = default_quota(client_keys);
  std::map<std::string, ResolvedQuota> out;
  for (const auto& [name, q] : key_quotas) out[name] = {q.max_sessions.value_or(d.max_sessions), q.kv_share.value_or(d.kv_share)};
  return out;
}

}  // namespace duet::cloud
