#include "cloud/cloud_config.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <sstream>
#include <type_traits>
#include <stdexcept>
#include <toml++/toml.h>

#include "common/toml_file.hpp"

namespace duet::cloud {

namespace {

namespace fs = std::filesystem;
using Form = CloudSetting::Form;
using C = CloudConfig;

const std::vector<CloudSetting> kSettings = {
    {"model", "path", "--model", "model folder (config.json + safetensors)", &C::model_path, Form::path},
    {"model", "dtype", "--dtype", "compute dtype: fp32, fp16, bf16", &C::dtype},
    {"server", "listen", "--listen", "ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:7700 (port * = any free)",
     &C::listen},
    {"server", "name", "", "the name the daemon gives in its hello reply", &C::name},
    {"server", "insecure", "--insecure", "plain TCP without CURVE (warns; trusted networks and tests only)",
     &C::insecure},
    {"server", "secret_key", "--secret-key", "the server's NAME.key_secret (duet-keygen)", &C::secret_key, Form::path},
    {"server", "authorized_keys", "--authorized-keys", "folder of client NAME.key files allowed to connect",
     &C::authorized_keys, Form::path},
    {"server", "wire_dtypes", "--wire-dtypes", "activation dtypes accepted on the wire (fp32, fp16, bf16, int8)",
     &C::wire_dtypes},
    {"server", "metrics_listen", "--metrics-listen", "HOST:PORT for Prometheus text metrics at /metrics (off by default)",
     &C::metrics_listen},
    {"server", "io_threads", "--io-threads",
     "ZeroMQ I/O threads doing the connections' CURVE work (0: a quarter of the cores, 1 to 4)", &C::io_threads},
    {"server", "metrics_token_file", "--metrics-token-file",
     "file whose first line is a bearer token /metrics then requires (Authorization: Bearer TOKEN)",
     &C::metrics_token_file, Form::path},
    {"server", "spin_us", "--spin-us",
     "the socket and engine threads poll without sleeping this long after each message or step, sparing "
     "wake-ups at the cost of two busy cores (default 0: off)",
     &C::spin_us},
    {"stages", "devices", "--devices", "comma-separated devices for the automatic plan, e.g. cuda:0,cuda:1 or cpu,cpu",
     &C::devices},
    {"stages", "plan", "--plan",
     "'auto' or explicit DEVICE[@WORKER]=FIRST-LAST,... (inclusive layer ranges; @WORKER: a duet-stage worker; "
     "DEVICE@WORKER=auto: the workers' layers split by the memory each offers)",
     &C::plan},
    {"stages", "first_block", "--first-block",
     "run blocks FIRST.. only: edges keep blocks 0..FIRST-1 (duet-edge --edge-blocks FIRST) and send their output "
     "instead of the token embeddings",
     &C::first_block},
    {"stages", "cluster_address", "--cluster-address",
     "this machine's address on the cluster network, for stage workers (plan items DEVICE@WORKER=FIRST-LAST; not "
     "encrypted: never where edges connect)",
     &C::cluster_address},
    {"stages", "cluster_port", "--cluster-port", "port of the c10d store stage workers meet at (0: any free one)",
     &C::cluster_port},
    {"stages", "cluster_allow_wildcard_store", "--cluster-allow-wildcard-store",
     "accept a LibTorch (< 2.4) whose c10d store listens on every interface; firewall its port",
     &C::cluster_allow_wildcard_store},
    {"stages", "stage_timeout_ms", "--stage-timeout-ms", "a step or heartbeat unanswered this long loses the stage workers",
     &C::stage_timeout_ms},
    {"stages", "stage_heartbeat_ms", "--stage-heartbeat-ms", "heartbeat period to the stage workers while no step is in flight",
     &C::stage_heartbeat_ms},
    {"limits", "max_sessions", "--max-sessions", "open sessions at most", &C::max_sessions},
    {"limits", "max_positions_per_session", "--max-positions", "positions per session at most",
     &C::max_positions_per_session},
    {"limits", "max_positions_per_forward", "--max-forward", "positions per forward at most",
     &C::max_positions_per_forward},
    {"limits", "kv_memory_mb", "--kv-memory-mb", "KV cache budget over all sessions, MiB", &C::kv_memory_mb},
    {"limits", "idle_timeout_s", "--idle-timeout", "seconds after which an idle session is closed", &C::idle_timeout_s},
    {"limits", "max_message_mb", "--max-message-mb", "largest message accepted, MiB", &C::max_message_mb},
    {"limits", "max_queued_mb", "--max-queued-mb", "request bytes queued in the daemon at most, all keys together, MiB",
     &C::max_queued_mb},
    {"limits", "max_queued_mb_per_key", "--max-queued-mb-per-key", "request bytes one client key may have queued, MiB",
     &C::max_queued_mb_per_key},
    {"scheduler", "max_batch_tokens", "--max-batch-tokens", "positions in one engine step, decode and prefill together",
     &C::max_batch_tokens},
    {"scheduler", "max_batch_rows", "--max-batch-rows", "sessions in one engine step", &C::max_batch_rows},
    {"scheduler", "prefill_chunk", "--prefill-chunk", "positions of one forward in one step, at most", &C::prefill_chunk},
    {"scheduler", "batch_wait_us", "--batch-wait-us",
     "wait this long at most for lately decoding sessions to fill a step", &C::batch_wait_us},
    {"scheduler", "batch_wait_step_fraction", "--batch-wait-step-fraction",
     "or wait up to this fraction of a measured decode-only step, when that is longer (default 0.5; 0: off)",
     &C::batch_wait_step_fraction},
    {"scheduler", "steps_in_flight", "--steps-in-flight",
     "steps of disjoint sessions in flight at once, stages pipelined (0: one per stage when stage workers run some "
     "stages, else 1)",
     &C::steps_in_flight},
    {"scheduler", "step_latency_factor", "--step-latency-factor",
     "a step carrying decode rows lasts at most this many decode-only steps: its prefill is cut to fit (default "
     "1.1; 0: no cap)",
     &C::step_latency_factor},
    {"scheduler", "max_step_ms", "--max-step-ms", "no step's prefill makes it last longer than this (default 250; 0: no cap)",
     &C::max_step_ms},
    {"scheduler", "min_prefill_tokens", "--min-prefill-tokens",
     "prefill positions a step carries at least when prompts wait", &C::min_prefill_tokens},
    {"quotas", "max_sessions_per_key", "--key-max-sessions",
     "sessions one client key may hold (default: half of --max-sessions when several keys may connect, else all; "
     "0: no per-key limit)",
     &C::key_max_sessions},
    {"quotas", "kv_share_per_key", "--key-kv-share",
     "share of the KV pool one client key may hold, in (0, 1] (default: 0.5 when several keys may connect, else 1)",
     &C::key_kv_share, Form::share},
    {"connections", "handshake_timeout_ms", "--handshake-timeout-ms", "a connection must finish CURVE + ZAP within this",
     &C::handshake_timeout_ms},
    {"connections", "max_handshaking", "--max-handshaking", "connections still in their handshake at once, from anywhere",
     &C::max_handshaking},
    {"connections", "max_handshaking_per_source", "--max-handshaking-per-source",
     "connections still in their handshake at once from one source address (IPv4, IPv6 /64)",
     &C::max_handshaking_per_source},
    {"connections", "max_pending_input_mb", "--max-pending-input-mb",
     "input per connection not yet a whole message, MiB", &C::max_pending_input_mb},
    {"connections", "reply_stall_timeout_ms", "--reply-stall-timeout-ms",
     "disconnect a peer whose reply queue stays full this long", &C::reply_stall_timeout_ms},
    {"connections", "send_queue_messages", "--send-queue", "replies queued per peer before they are dropped",
     &C::send_queue_messages},
};

// A setting's value as read, before it is checked against its member's type and form.
using Value = std::variant<std::string, bool, int64_t, double, std::vector<std::string>>;

std::string shown(double v) {
  std::string s = std::to_string(v);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

template <class T>
T count_of(const Value& v) {
  const int64_t* n = std::get_if<int64_t>(&v);
  if (!n) throw std::invalid_argument("must be a whole number, 0 or more");
  if (*n < 0) throw std::invalid_argument("must be 0 or more, not " + std::to_string(*n));
  if (static_cast<uint64_t>(*n) > std::numeric_limits<T>::max())
    throw std::invalid_argument("must be at most " + std::to_string(std::numeric_limits<T>::max()) + ", not " +
                                std::to_string(*n));
  return static_cast<T>(*n);
}

double real_of(const Value& v, Form form) {
  double d = 0;
  if (auto* n = std::get_if<int64_t>(&v)) d = static_cast<double>(*n);
  else if (auto* x = std::get_if<double>(&v)) d = *x;
  else throw std::invalid_argument("must be a number");
  if (form == Form::share && !(d > 0.0 && d <= 1.0))
    throw std::invalid_argument("must be a number in (0, 1], a share of the KV pool, not " + shown(d));
  if (!(d >= 0.0)) throw std::invalid_argument("must be 0 or more, not " + shown(d));
  return d;
}

// Stores `v` in `s`'s member of `c`; relative paths are taken from `base` (empty: as given).
void store(const CloudSetting& s, const Value& v, CloudConfig& c, const fs::path& base) {
  std::visit(
      [&](auto m) {
        auto& out = c.*m;
        using T = std::decay_t<decltype(out)>;
        if constexpr (std::is_same_v<T, std::string>) {
          const std::string* text = std::get_if<std::string>(&v);
          if (!text) throw std::invalid_argument("must be a string");
          const bool relative = s.form == Form::path && !base.empty() && !text->empty() && fs::path(*text).is_relative();
          out = relative ? (base / *text).lexically_normal().string() : *text;
        } else if constexpr (std::is_same_v<T, bool>) {
          const bool* b = std::get_if<bool>(&v);
          if (!b) throw std::invalid_argument("must be true or false");
          out = *b;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          const auto* list = std::get_if<std::vector<std::string>>(&v);
          if (!list) throw std::invalid_argument("must be an array of strings");
          out = *list;
        } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, std::optional<double>>) {
          out = real_of(v, s.form);
        } else if constexpr (std::is_same_v<T, std::optional<uint32_t>>) {
          out = count_of<uint32_t>(v);
        } else {
          out = count_of<T>(v);
        }
      },
      s.member);
}

// A TOML number as read (a string or a table: a Value no number check accepts)
Value number_of(const toml::node& n) {
  if (auto v = n.value_exact<int64_t>()) return *v;
  if (auto v = n.value_exact<double>()) return *v;
  return false;
}

// What a TOML node holds, read as `s`'s member wants it (a mistyped node: the type it should be).
Value value_of(const CloudSetting& s, const toml::node& n) {
  return std::visit(
      [&](auto m) -> Value {
        using T = std::decay_t<decltype(std::declval<CloudConfig&>().*m)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (auto v = n.value_exact<std::string>()) return *v;
          throw std::invalid_argument("must be a string");
        } else if constexpr (std::is_same_v<T, bool>) {
          if (auto v = n.value_exact<bool>()) return *v;
          throw std::invalid_argument("must be true or false");
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          const toml::array* a = n.as_array();
          if (!a) throw std::invalid_argument("must be an array of strings");
          std::vector<std::string> out;
          for (auto&& e : *a) {
            auto v = e.value_exact<std::string>();
            if (!v) throw std::invalid_argument("must be an array of strings");
            out.push_back(*v);
          }
          return out;
        } else {
          return number_of(n);  // whole or not: the member's check says which it takes
        }
      },
      s.member);
}

}  // namespace

const std::vector<CloudSetting>& cloud_settings() { return kSettings; }

bool CloudSetting::is_number() const {
  return !std::holds_alternative<std::string CloudConfig::*>(member) && !is_switch() &&
         !std::holds_alternative<std::vector<std::string> CloudConfig::*>(member);
}

void CloudSetting::set_from_text(const std::string& text, CloudConfig& c) const {
  Value v = text;
  if (is_switch()) {
    if (text != "true" && text != "false") throw std::invalid_argument("must be true or false, not '" + text + "'");
    v = text == "true";
  } else if (std::holds_alternative<std::vector<std::string> CloudConfig::*>(member)) {
    std::vector<std::string> items;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) items.push_back(item);
    v = items;
  } else if (is_number()) {
    const bool whole = !std::holds_alternative<double CloudConfig::*>(member) &&
                       !std::holds_alternative<std::optional<double> CloudConfig::*>(member);
    size_t used = 0;
    try {
      if (whole) v = static_cast<int64_t>(std::stoll(text, &used));
      else v = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size())
      throw std::invalid_argument(std::string(whole ? "must be a whole number" : "must be a number") + ", not '" +
                                  text + "'");
  }
  store(*this, v, c, {});
}

CloudConfig CloudConfig::from_toml_file(const std::string& path) {
  const toml::table root = parse_toml_file(path);
  const fs::path base = fs::path(path).parent_path();
  auto fail = [&](const std::string& key, const std::string& what) {
    throw std::invalid_argument(path + ": '" + key + "' " + what);
  };
  // sections and keys: the table's, plus [quotas.keys.NAME]
  for (auto&& [k, v] : root) {
    const std::string sec(k.str());
    const bool known = std::any_of(kSettings.begin(), kSettings.end(), [&](const CloudSetting& s) { return s.section == sec; });
    if (!known) fail(sec, "is not a known section");
    const toml::table* t = v.as_table();
    if (!t) fail(sec, "must be a table ([" + sec + "])");
    for (auto&& [key, node] : *t) {
      const std::string name(key.str());
      const bool setting = std::any_of(kSettings.begin(), kSettings.end(),
                                       [&](const CloudSetting& s) { return s.section == sec && s.key == name; });
      if (!setting && !(sec == "quotas" && name == "keys")) fail(sec + "." + name, "is not a known setting");
    }
  }
  CloudConfig c;
  for (const CloudSetting& s : kSettings) {
    const toml::node* n = root.at_path(std::string(s.section) + "." + s.key).node();
    if (!n) continue;
    try {
      store(s, value_of(s, *n), c, base);
    } catch (const std::invalid_argument& e) {
      fail(std::string(s.section) + "." + s.key, e.what());
    }
  }
  if (const toml::node* keys = root.at_path("quotas.keys").node()) {
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
          if (key == "max_sessions") kq.max_sessions = count_of<uint32_t>(number_of(qv));
          else kq.kv_share = real_of(number_of(qv), Form::share);
        } catch (const std::invalid_argument& e) {
          fail(sec + "." + key, e.what());
        }
      }
      c.key_quotas[name] = kq;
    }
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
