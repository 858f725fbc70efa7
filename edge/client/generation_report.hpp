#pragma once
// duet-edge generate's report, for both of its loops (tokens, and NotaGen's patches): one --json
// record per tune or piece that opens the same way (record_json), a music model's "tune" object
// (tune_json), the summary line's reason, and the timings: each round's parts, and a summary of
// where a decoded token's time goes. Rounds are StepStats: one backbone call each, however many
// tokens it yields, so the same report holds for one token per round trip or several.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/generator.hpp"
#include "edge/client/stop_reason.hpp"
#include "edge/music/music_options.hpp"

namespace duet::edge {

// What every record opens with, whichever loop wrote it.
struct RecordHead {
  bool local = false;   // "mode": local or split
  std::string model;    // the model folder
  uint64_t seed = 0;
  std::string text;     // what the model wrote
  StopReason stop = StopReason::budget;
  double load_ms = 0;   // loading the edge's pieces and meeting the daemon
};

// {mode, model, seed, text, stop_reason, finish_reason, load_ms}: stop_reason and finish_reason
// as the API's last chunk gives them (stop_reason.hpp), so a tune that the ending rule closed is
// "ending_rule" in the CLI's record, its summary line, the API and the page alike.
nlohmann::json record_json(const RecordHead& h);

// A music model's "tune" object (scripts/abc/sample_edge.py reads it): index, abc, title, style,
// meter, unit, key, prompt, bar_constraint, relaxed_steps. Callers add their loop's own fields.
nlohmann::json tune_json(int64_t index, const std::string& abc, const std::string& title,
                         const music::CheckedMusicOptions& o, const std::string& prompt, bool bar_constraint,
                         int64_t relaxed_steps);

// The summary line's reason: "ending_rule: the ending rule closed it at a bar line as ...".
std::string stop_text(StopReason r);

// One round: positions sent, tokens gained, the edge's parts (embed, head, sample), the call as
// the edge saw it (round_trip_ms), the request on the wire, the daemon's account (queue, stages)
// and what is left between them (uplink_downlink_ms). Unknown values are null.
nlohmann::json round_json(const StepStats& st);

// Decode rounds only (the first round, the prefill, stands apart): tokens, rounds, tokens per
// round, decode time and tokens/s, and per_token_ms: the mean of each part per decoded token;
// the parts add up to total (edge_codec: the call's time outside the request, i.e. host copies
// and wire dtype conversion; daemon_other: the daemon's time outside queue and stages).
nlohmann::json timing_summary(const GenerationResult& res);

}  // namespace duet::edge
