#include "cloud/metrics.hpp"

#include <sstream>

#include "cloud/decoder_turnaround.hpp"

namespace duet::cloud {

void NetworkStats::refuse(const std::string& code) {
  std::lock_guard<std::mutex> lock(mu_);
  ++refused_[code];
}

void NetworkStats::set_connections(const ConnectionStats& c, size_t peers) {
  std::lock_guard<std::mutex> lock(mu_);
  connections_ = c;
  peers_ = peers;
}

NetworkSnapshot NetworkStats::snapshot() const {
  NetworkSnapshot s;
  s.replies_dropped = replies_dropped.load();
  s.peers_dropped = peers_dropped.load();
  s.handoff_out_ns = handoff_out_ns.load();
  s.handoffs_out = handoffs_out.load();
  std::lock_guard<std::mutex> lock(mu_);
  s.refused = refused_;
  s.connections = connections_;
  s.peers = peers_;
  return s;
}

namespace {

// Label values are key names and error codes; escape what the text format requires anyway.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string seconds_label(double s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

struct Writer {
  std::ostringstream o;
  void head(const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <class T>
  void value(const char* name, T v, const std::string& labels = {}) {
    o << name;
    if (!labels.empty()) o << '{' << labels << '}';
    o << ' ' << v << '\n';
  }
};

}  // namespace

std::string render_metrics(const EngineStats& e, const NetworkSnapshot& n) {
  Writer w;
  w.head("duet_sessions_open", "gauge", "Sessions open now.");
  w.value("duet_sessions_open", e.sessions_open);
  w.head("duet_sessions_total", "counter", "Sessions by how they ended or began.");
  w.value("duet_sessions_total", e.sessions_opened, "event=\"opened\"");
  w.value("duet_sessions_total", e.sessions_closed, "event=\"closed\"");
  w.value("duet_sessions_total", e.sessions_expired, "event=\"expired\"");
  w.head("duet_requests_refused_total", "counter", "Requests answered with an error, by error code.");
  std::map<std::string, uint64_t> refused = e.refused;
  for (const auto& [code, count] : n.refused) refused[code] += count;
  for (const auto& [code, count] : refused) w.value("duet_requests_refused_total", count, "code=\"" + label(code) + "\"");
  w.head("duet_forwards_waiting", "gauge", "Admitted forwards waiting for the next step (queue depth).");
  w.value("duet_forwards_waiting", e.forwards_waiting);
  w.head("duet_forwards_dropped_total", "counter", "Queued forwards dropped because their connection closed.");
  w.value("duet_forwards_dropped_total", e.forwards_dropped_gone);
  w.head("duet_queued_bytes", "gauge", "Request bytes the daemon holds queued or running (bounded per key and in all).");
  w.value("duet_queued_bytes", e.queued_bytes);
  w.head("duet_step_rows_total", "counter",
         "Rows run over all steps; divided by duet_step_live_sessions_total: how full steps are.");
  w.value("duet_step_rows_total", e.rows_total);
  w.head("duet_step_live_sessions_total", "counter",
         "Per step, the sessions that decoded in the last 50 ms (at least the step's rows), summed over steps.");
  w.value("duet_step_live_sessions_total", e.live_sessions_total);
  w.head("duet_step_cost_seconds", "gauge", "The scheduler's estimates: a decode-only step, one prefill position, the fixed part of a step with prefill.");
  w.value("duet_step_cost_seconds", e.decode_step_seconds, "part=\"decode_step\"");
  w.value("duet_step_cost_seconds", e.prefill_token_seconds, "part=\"prefill_token\"");
  w.value("duet_step_cost_seconds", e.prefill_overhead_seconds, "part=\"prefill_overhead\"");
  w.head("duet_forwards_served_total", "counter", "Forwards answered with a result.");
  w.value("duet_forwards_served_total", e.forwards_served);
  w.head("duet_tokens_total", "counter", "Positions run through the blocks.");
  w.value("duet_tokens_total", e.decode_tokens, "phase=\"decode\"");
  w.value("duet_tokens_total", e.prefill_tokens, "phase=\"prefill\"");
  w.head("duet_steps_total", "counter", "Engine steps (one batched forward through every stage).");
  w.value("duet_steps_total", e.steps);
  w.head("duet_steps_pipelined_total", "counter", "Steps launched while another was in flight (stages pipelined).");
  w.value("duet_steps_pipelined_total", e.steps_pipelined);
  w.head("duet_step_seconds_total", "counter", "Time spent running steps.");
  w.value("duet_step_seconds_total", e.step_seconds_total);
  w.head("duet_batch_rows", "histogram", "Rows (sessions) per step.");
  uint64_t cum = 0;
  const char* les[] = {"1", "2", "4", "8", "16", "32", "64", "128", "+Inf"};
  for (size_t i = 0; i < e.batch_rows_hist.size() && i < 9; ++i) {
    cum += e.batch_rows_hist[i];
    w.value("duet_batch_rows_bucket", cum, std::string("le=\"") + les[i] + "\"");
  }
  w.value("duet_batch_rows_count", cum);
  w.head("duet_decode_turnaround_seconds", "histogram",
         "From a decoding session's reply to its next forward's arrival (the edge's round trip).");
  cum = 0;
  for (size_t i = 0; i < e.turnaround_hist.size(); ++i) {
    cum += e.turnaround_hist[i];
    const bool last = i + 1 == e.turnaround_hist.size();
    w.value("duet_decode_turnaround_seconds_bucket", cum,
            "le=\"" + (last ? std::string("+Inf") : seconds_label(DecoderTurnaround::kBucketsMs[i] / 1e3)) + "\"");
  }
  w.value("duet_decode_turnaround_seconds_count", cum);
  w.head("duet_handoff_seconds_total", "counter",
         "Time between the daemon's threads: a request from the socket thread's receipt to the engine taking it "
         "up (in; with a step running, the rest of that step too), a reply from the engine forming it to the "
         "socket thread sending it (out; the rest of the step's replies too).");
  w.value("duet_handoff_seconds_total", e.handoff_in_seconds, "part=\"in\"");
  w.value("duet_handoff_seconds_total", double(n.handoff_out_ns) * 1e-9, "part=\"out\"");
  w.head("duet_handoffs_total", "counter", "Messages handed over between the daemon's threads.");
  w.value("duet_handoffs_total", e.handoffs_in, "part=\"in\"");
  w.value("duet_handoffs_total", n.handoffs_out, "part=\"out\"");
  w.head("duet_batch_wait_seconds_total", "counter", "Time steps waited for sessions predicted back (the batching window).");
  w.value("duet_batch_wait_seconds_total", e.gather_seconds);
  w.head("duet_batch_wait_steps_total", "counter", "Steps that waited for sessions predicted back.");
  w.value("duet_batch_wait_steps_total", e.gathers);
  w.head("duet_stage_weight_bytes", "gauge",
         "The stage plan: each stage's weights (-1: its worker has not joined), labelled with where it runs.");
  auto stage_labels = [&](size_t i, const StageRow& r) {
    return "stage=\"" + std::to_string(i) + "\",worker=\"" + label(r.worker) + "\",host=\"" + label(r.host) +
           "\",device=\"" + label(r.device) + "\",layers=\"" + std::to_string(r.first) + "-" + std::to_string(r.last) + "\"";
  };
  for (size_t i = 0; i < e.stages.size(); ++i) w.value("duet_stage_weight_bytes", e.stages[i].weight_bytes, stage_labels(i, e.stages[i]));
  w.head("duet_stage_kv_bytes", "gauge", "The stage plan: each stage's KV pool (-1: its worker has not joined).");
  for (size_t i = 0; i < e.stages.size(); ++i) w.value("duet_stage_kv_bytes", e.stages[i].kv_bytes, stage_labels(i, e.stages[i]));
  w.head("duet_kv_blocks", "gauge", "KV pool blocks by state.");
  w.value("duet_kv_blocks", e.kv_blocks_used, "state=\"used\"");
  w.value("duet_kv_blocks", e.kv_blocks_free, "state=\"free\"");
  w.head("duet_kv_block_positions", "gauge", "Positions per KV block.");
  w.value("duet_kv_block_positions", e.kv_block_size);
  w.head("duet_key_sessions", "gauge", "Sessions open per client key.");
  for (const auto& [owner, u] : e.per_owner) w.value("duet_key_sessions", u.sessions, "key=\"" + label(owner) + "\"");
  w.head("duet_key_kv_blocks", "gauge", "KV blocks held per client key.");
  for (const auto& [owner, u] : e.per_owner) w.value("duet_key_kv_blocks", u.blocks, "key=\"" + label(owner) + "\"");
  w.head("duet_key_tokens_total", "counter", "Positions run per client key.");
  for (const auto& [owner, t] : e.tokens_per_owner) w.value("duet_key_tokens_total", t, "key=\"" + label(owner) + "\"");
  w.head("duet_replies_dropped_total", "counter", "Replies dropped because the client's queue was full.");
  w.value("duet_replies_dropped_total", n.replies_dropped);
  w.head("duet_connections_dropped_total", "counter", "Connections the daemon closed, by reason.");
  w.value("duet_connections_dropped_total", n.peers_dropped, "reason=\"not_reading\"");
  w.value("duet_connections_dropped_total", n.connections.refused_over_handshake_cap, "reason=\"handshake_cap\"");
  w.value("duet_connections_dropped_total", n.connections.refused_over_source_cap, "reason=\"source_handshake_cap\"");
  w.value("duet_connections_dropped_total", n.connections.dropped_pending_input, "reason=\"pending_input\"");
  w.head("duet_connections_accepted_total", "counter", "TCP connections accepted.");
  w.value("duet_connections_accepted_total", n.connections.accepted);
  w.head("duet_handshakes_total", "counter", "CURVE/ZAP handshakes by outcome.");
  w.value("duet_handshakes_total", n.connections.handshakes_ok, "outcome=\"ok\"");
  w.value("duet_handshakes_total", n.connections.handshakes_failed, "outcome=\"failed\"");
  w.head("duet_peers", "gauge", "Connections the daemon knows (sent something, not idle).");
  w.value("duet_peers", n.peers);
  return w.o.str();
}

}  // namespace duet::cloud
