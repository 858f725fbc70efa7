#pragma once
// A generation's timings as JSON (duet-edge generate --json): each round's parts, and a summary
// of where a decoded token's time goes. Rounds are StepStats: one backbone call each, however
// many tokens it yields, so the same report holds for one token per round trip or several.
#include <nlohmann/json.hpp>

#include "common/generator.hpp"

namespace duet::edge {

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
