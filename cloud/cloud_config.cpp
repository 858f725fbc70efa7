#include "cloud/cloud_config.hpp"

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
                                     "metrics_listen"})) {
    r.str(t, "server", "metrics_listen", c.metrics_listen);
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
                                     "kv_memory_mb", "idle_timeout_s", "max_message_mb"})) {
    r.num(t, "limits", "max_sessions", c.max_sessions);
    r.num(t, "limits", "max_positions_per_session", c.max_positions_per_session);
    r.num(t, "limits", "max_positions_per_forward", c.max_positions_per_forward);
    r.num(t, "limits", "kv_memory_mb", c.kv_memory_mb);
    r.num(t, "limits", "idle_timeout_s", c.idle_timeout_s);
    r.num(t, "limits", "max_message_mb", c.max_message_mb);
  }
  if (auto* t = r.section("scheduler", {"max_batch_tokens", "max_batch_rows", "prefill_chunk", "batch_wait_us"})) {
    r.num(t, "scheduler", "batch_wait_us", c.batch_wait_us);
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
        CloudConfig::KeyQuota kq{c.key_max_sessions, c.key_kv_share};
        r.num(q, sec, "max_sessions", kq.max_sessions);
        r.share(q, sec, "kv_share", kq.kv_share);
        c.key_quotas[name] = kq;
      }
    }
  }
  if (auto* t = r.section("connections", {"handshake_timeout_ms", "max_handshaking", "max_pending_input_mb",
                                          "reply_stall_timeout_ms", "send_queue_messages"})) {
    r.num(t, "connections", "handshake_timeout_ms", c.handshake_timeout_ms);
    r.num(t, "connections", "max_handshaking", c.max_handshaking);
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
  if (handshake_timeout_ms == 0) bad("[connections] handshake_timeout_ms must be at least 1 (0 would let a silent "
                                     "connection hold a file descriptor forever)");
  if (max_handshaking == 0) bad("[connections] max_handshaking must be at least 1");
  if (max_pending_input_mb < 2 * max_message_mb)
    bad("[connections] max_pending_input_mb (" + std::to_string(max_pending_input_mb) +
        ") must be at least twice [limits] max_message_mb (" + std::to_string(max_message_mb) +
        "): a connection may hold one whole message plus the next arriving");
  if (reply_stall_timeout_ms == 0) bad("[connections] reply_stall_timeout_ms must be at least 1");
  if (send_queue_messages == 0) bad("[connections] send_queue_messages must be at least 1");
  if (cluster_port > 65535) bad("[stages] cluster_port must be at most 65535");
  if (stage_timeout_ms == 0 || stage_heartbeat_ms == 0) bad("[stages] stage_timeout_ms and stage_heartbeat_ms must be at least 1");
  if (max_batch_tokens < 1 || max_batch_rows < 1 || prefill_chunk < 1)
    bad("[scheduler] max_batch_tokens, max_batch_rows and prefill_chunk must be at least 1");
}

}  // namespace duet::cloud
