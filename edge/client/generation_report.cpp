#include "edge/client/generation_report.hpp"

#include <string>
#include <vector>

namespace duet::edge {

namespace {
nlohmann::json ms_or_null(double ms) { return ms >= 0 ? nlohmann::json(ms) : nlohmann::json(nullptr); }
}  // namespace

nlohmann::json record_json(const RecordHead& h) {
  return {{"mode", h.local ? "local" : "split"},
          {"model", h.model},
          {"seed", h.seed},
          {"text", h.text},
          {"stop_reason", to_string(h.stop)},
          {"finish_reason", finish_reason(h.stop)},
          {"load_ms", h.load_ms}};
}

nlohmann::json tune_json(int64_t index, const std::string& abc, const std::string& title,
                         const music::CheckedMusicOptions& o, const std::string& prompt, bool bar_constraint,
                         int64_t relaxed_steps) {
  return {{"index", index},      {"abc", abc},       {"title", title},   {"style", o.style},
          {"meter", o.meter.text}, {"unit", o.unit_text()}, {"key", o.key.text}, {"prompt", prompt},
          {"bar_constraint", bar_constraint}, {"relaxed_steps", relaxed_steps}};
}

std::string stop_text(StopReason r) { return std::string(to_string(r)) + ": " + describe(r); }

nlohmann::json round_json(const StepStats& st) {
  const RoundTiming& b = st.backbone;
  return {{"positions", st.positions},
          {"tokens", st.tokens},
          {"drafted", st.drafted},
          {"accepted", st.accepted},
          {"edge_ms", st.edge_ms},
          {"embed_ms", st.embed_ms},
          {"head_ms", st.head_ms},
          {"sample_ms", st.sample_ms},
          {"round_trip_ms", st.backbone_ms},
          {"cloud_ms", st.cloud_ms},
          {"request_ms", ms_or_null(b.request_ms)},
          {"uplink_downlink_ms", ms_or_null(b.link_ms())},
          {"daemon_ms", ms_or_null(b.daemon_ms)},
          {"queue_ms", ms_or_null(b.queue_ms)},
          {"stage_ms", b.stage_ms},
          {"forwards", b.forwards}};
}

nlohmann::json timing_summary(const GenerationResult& res) {
  nlohmann::json j;
  if (res.steps.empty()) return j;
  const StepStats& pre = res.steps.front();
  j["prefill"] = {{"positions", pre.positions}, {"ms", pre.edge_ms + pre.backbone_ms}};

  // sums over decode rounds; a part some round does not know is unknown for all
  int64_t tokens = 0, rounds = 0;
  double total = 0, embed = 0, head = 0, sample = 0, codec = 0, link = 0, queue = 0, stages = 0, other = 0;
  bool link_known = true, parts_known = true;
  std::vector<double> per_stage;
  for (size_t i = 1; i < res.steps.size(); ++i) {
    const StepStats& st = res.steps[i];
    const RoundTiming& b = st.backbone;
    ++rounds;
    tokens += st.tokens;
    total += st.edge_ms + st.backbone_ms;
    embed += st.embed_ms;
    head += st.head_ms;
    sample += st.sample_ms;
    link_known = link_known && b.request_ms >= 0 && b.daemon_ms >= 0;
    parts_known = parts_known && link_known && b.queue_ms >= 0 && !b.stage_ms.empty();
    if (!link_known) continue;
    codec += st.backbone_ms - b.request_ms;
    link += b.link_ms();
    if (!parts_known) continue;
    queue += b.queue_ms;
    stages += b.stages_total_ms();
    other += b.daemon_ms - b.queue_ms - b.stages_total_ms();
    if (per_stage.empty()) per_stage.assign(b.stage_ms.size(), 0.0);
    if (per_stage.size() != b.stage_ms.size()) parts_known = false;  // the plan changed (a resume elsewhere)
    else
      for (size_t s = 0; s < per_stage.size(); ++s) per_stage[s] += b.stage_ms[s];
  }
  j["decode_rounds"] = rounds;
  j["decode_tokens"] = tokens;
  j["tokens_per_round"] = rounds ? nlohmann::json(double(tokens) / double(rounds)) : nlohmann::json(nullptr);
  j["decode_ms"] = total;
  j["decode_tok_s"] = total > 0 ? nlohmann::json(1000.0 * double(tokens) / total) : nlohmann::json(nullptr);
  if (tokens == 0) return j;
  const double n = double(tokens);
  auto per = [&](double v, bool known) { return known ? nlohmann::json(v / n) : nlohmann::json(nullptr); };
  nlohmann::json stage_list = nlohmann::json::array();
  if (parts_known)
    for (double s : per_stage) stage_list.push_back(s / n);
  j["per_token_ms"] = {{"embed", embed / n},
                       {"edge_codec", per(codec, link_known)},
                       {"uplink_downlink", per(link, link_known)},
                       {"queue", per(queue, parts_known)},
                       {"stages", per(stages, parts_known)},
                       {"stage", stage_list},
                       {"daemon_other", per(other, parts_known)},
                       {"head", head / n},
                       {"sample", sample / n},
                       {"total", total / n}};
  return j;
}

}  // namespace duet::edge
