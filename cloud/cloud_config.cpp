#include "cloud/cloud_config.hpp"

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <toml++/toml.h>

#include "common/toml_file.hpp"

namespace duet::cloud {

namespace {

namespace fs = std::filesystem;

struct TomlReader {
  const toml::table& root;
  std::string file;
  fs::path base;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw std::invalid_argument(file + ": '" + key + "' " + what);
  }
  const toml::table* section(const std::string& name, const std::set<std::string>& keys) const {
    const toml::node* n = root.get(name);
    if (!n) return nullptr;
    const toml::table* t = n->as_table();
    if (!t) fail(name, "must be a table ([" + name + "])");
    for (auto&& [k, v] : *t)
      if (!keys.count(std::string(k.str()))) fail(name + "." + std::string(k.str()), "is not a known setting");
    return t;
  }
  void str(const toml::table* t, const std::string& sec, const char* key, std::string& out, bool path = false) const {
    if (!t || !t->get(key)) return;
    auto v = t->get(key)->value<std::string>();
    if (!v) fail(sec + "." + key, "must be a string");
    out = path && !v->empty() && fs::path(*v).is_relative() ? (base / *v).lexically_normal().string() : *v;
  }
  template <class T>
  void num(const toml::table* t, const std::string& sec, const char* key, std::optional<T>& out) const {
    if (!t || !t->get(key)) return;
    T v{};
    num(t, sec, key, v);
    out = v;
  }
  void share(const toml::table* t, const std::string& sec, const char* key, std::optional<double>& out) const {
    if (!t || !t->get(key)) return;
    double v = 1.0;
    share(t, sec, key, v);
    out = v;
  }
  void real(const toml::table* t, const std::string& sec, const char* key, double& out) const {
    if (!t || !t->get(key)) return;
    auto v = t->get(key)->value<double>();
    if (!v || *v < 0.0) fail(sec + "." + key, "must be a non-negative number");
    out = *v;
  }
  template <class T>
  void num(const toml::table* t, const std::string& sec, const char* key, T& out) const {
    if (!t || !t->get(key)) return;
    auto v = t->get(key)->value_exact<int64_t>();
    if (!v || *v < 0) fail(sec + "." + key, "must be a non-negative integer");
    out = static_cast<T>(*v);
  }
  void share(const toml::table* t, const std::string& sec, const char* key, double& out) const {
    if (!t || !t->get(key)) return;
    auto v = t->get(key)->value<double>();
    if (!v || *v <= 0.0 || *v > 1.0) fail(sec + "." + key, "must be a number in (0, 1], a share of the KV pool");
    out = *v;
  }
  void flag(const toml::table* t, const std::string& sec, const char* key, bool& out) const {
    if (!t || !t->get(key)) return;
    auto v = t->get(key)->value_exact<bool>();
    if (!v) fail(sec + "." + key, "must be true or false");
    out = *v;
  }
  void list(const toml::table* t, const std::string& sec, const char* key, std::vector<std::string>& out) const {
    if (!t || !t->get(key)) return;
    const toml::array* a = t->get(key)->as_array();
    if (!a) fail(sec + "." + key, "must be an array of strings");
    out.clear();
    for (auto&& e : *a) {
      auto v = e.value<std::string>();
      if (!v) fail(sec + "." + key, "must be an array of strings");
      out.push_back(*v);
    }
  }
};

}  // namespace

CloudConfig CloudConfig::from_toml_file(const std::string& path) {
  const toml::table root = parse_toml_file(path);
  TomlReader r{root, path, fs::path(path).parent_path()};
  for (auto&& [k, v] : root) {
    const std::string key(k.str());
    if (key != "model" && key != "server" && key != "stages" && key != "limits" &&
        key != "connections" && key != "scheduler" && key != "quotas")
      r.fail(key, "is not a known section");
  }
  CloudConfig c;
  if (auto* t = r.section("model", {"path", "dtype"})) {
    r.str(t, "model", "path", c.model_path, true);
    r.str(t, "model", "dtype", c.dtype);
  }
  if (auto* t = r.section("server", {"listen", "name", "insecure", "secret_key", "authorized_keys", "wire_dtypes",
                                     "metrics_listen", "io_threads", "metrics_token_file", "spin_us"})) {
    r.num(t, "server", "io_threads", c.io_threads);
    r.num(t, "server", "spin_us", c.spin_us);
    r.str(t, "server", "metrics_listen", c.metrics_listen);
    r.str(t, "server", "metrics_token_file", c.metrics_token_file, true);
    r.str(t, "server", "listen", c.listen);
    r.str(t, "server", "name", c.name);
    r.flag(t, "server", "insecure", c.insecure);
    r.str(t, "server", "secret_key", c.secret_key, true);
    r.str(t, "server", "authorized_keys", c.authorized_keys, true);
    r.list(t, "server", "wire_dtypes", c.wire_dtypes);
  }
  if (auto* t = r.section("stages", {"devices", "plan", "first_block", "cluster_address", "cluster_port",
                                     "cluster_allow_wildcard_store", "stage_timeout_ms", "stage_heartbeat_ms"})) {
    r.list(t, "stages", "devices", c.devices);
    r.str(t, "stages", "plan", c.plan);
    r.num(t, "stages", "first_block", c.first_block);
    r.str(t, "stages", "cluster_address", c.cluster_address);
    r.num(t, "stages", "cluster_port", c.cluster_port);
    r.flag(t, "stages", "cluster_allow_wildcard_store", c.cluster_allow_wildcard_store);
    r.num(t, "stages", "stage_timeout_ms", c.stage_timeout_ms);
    r.num(t, "stages", "stage_heartbeat_ms", c.stage_heartbeat_ms);
  }
  if (auto* t = r.section("limits", {"max_sessions", "max_positions_per_session", "max_positions_per_forward",
                                     "kv_memory_mb", "idle_timeout_s", "max_message_mb", "max_queued_mb",
                                     "max_queued_mb_per_key"})) {
    r.num(t, "limits", "max_queued_mb", c.max_queued_mb);
    r.num(t, "limits", "max_queued_mb_per_key", c.max_queued_mb_per_key);
    r.num(t, "limits", "max_sessions", c.max_sessions);
    r.num(t, "limits", "max_positions_per_session", c.max_positions_per_session);
    r.num(t, "limits", "max_positions_per_forward", c.max_positions_per_forward);
    r.num(t, "limits", "kv_memory_mb", c.kv_memory_mb);
    r.num(t, "limits", "idle_timeout_s", c.idle_timeout_s);
    r.num(t, "limits", "max_message_mb", c.max_message_mb);
  }
  if (auto* t = r.section("scheduler", {"max_batch_tokens", "max_batch_rows", "prefill_chunk", "batch_wait_us",
                                        "batch_wait_step_fraction", "steps_in_flight",
                                        "step_latency_factor", "min_prefill_tokens", "max_step_ms"})) {
    r.num(t, "scheduler", "max_step_ms", c.max_step_ms);
    r.real(t, "scheduler", "step_latency_factor", c.step_latency_factor);
    r.num(t, "scheduler", "min_prefill_tokens", c.min_prefill_tokens);
    r.num(t, "scheduler", "batch_wait_us", c.batch_wait_us);
    r.real(t, "scheduler", "batch_wait_step_fraction", c.batch_wait_step_fraction);
    r.num(t, "scheduler", "steps_in_flight", c.steps_in_flight);
    r.num(t, "scheduler", "max_batch_tokens", c.max_batch_tokens);
    r.num(t, "scheduler", "max_batch_rows", c.max_batch_rows);
    r.num(t, "scheduler", "prefill_chunk", c.prefill_chunk);
  }
  if (auto* t = r.section("quotas", {"max_sessions_per_key", "kv_share_per_key", "keys"})) {
    r.num(t, "quotas", "max_sessions_per_key", c.key_max_sessions);
    r.share(t, "quotas", "kv_share_per_key", c.key_kv_share);
    if (const toml::node* keys = t->get("keys")) {
      const toml::table* kt = keys->as_table();
      if (!kt) r.fail("quotas.keys", "must be a table of [quotas.keys.NAME] tables");
      for (auto&& [k, v] : *kt) {
        const std::string name(k.str()), sec = "quotas.keys." + name;
        const toml::table* q = v.as_table();
        if (!q) r.fail(sec, "must be a table with max_sessions and/or kv_share");
        for (auto&& [qk, qv] : *q)
          if (qk.str() != "max_sessions" && qk.str() != "kv_share") r.fail(sec + "." + std::string(qk.str()), "is not a known setting");
        CloudConfig::KeyQuota kq;
        r.num(q, sec, "max_sessions", kq.max_sessions);
        r.share(q, sec, "kv_share", kq.kv_share);
        c.key_quotas[name] = kq;
      }
    }
  }
  if (auto* t = r.section("connections", {"handshake_timeout_ms", "max_handshaking", "max_handshaking_per_source",
                                          "max_pending_input_mb",
                                          "reply_stall_timeout_ms", "send_queue_messages"})) {
    r.num(t, "connections", "handshake_timeout_ms", c.handshake_timeout_ms);
    r.num(t, "connections", "max_handshaking", c.max_handshaking);
    r.num(t, "connections", "max_handshaking_per_source", c.max_handshaking_per_source);
    r.num(t, "connections", "max_pending_input_mb", c.max_pending_input_mb);
    r.num(t, "connections", "reply_stall_timeout_ms", c.reply_stall_timeout_ms);
    r.num(t, "connections", "send_queue_messages", c.send_queue_messages);
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
  if (spin_us > 100000)
    bad("[server] spin_us is " + std::to_string(spin_us) + ": at most 100000 (0.1 s; it is a short busy wait, not a timeout)");
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
