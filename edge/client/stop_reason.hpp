#pragma once
// Why a generation ended, one type for every front end: the CLI's summary line and --json, the
// API's finish_reason (and duet's own "stop_reason" beside it), and the music page's status.
// Header-only, no LibTorch: the server's JSON code (fuzzed without it) uses it too.
#include <string>

namespace duet::edge {

enum class StopReason {
  eos,          // the model ended it (an end-of-sequence token)
  ending_rule,  // the tune's ending push closed it at a bar line as the budget ran out
  stop_string,  // a stop string of the request appeared
  budget,       // the token budget (max_tokens, -n) ran out
  context,      // the model's (or daemon's) positions ran out
  cancelled,    // the reader went away, or the server stopped
};
constexpr StopReason kStopReasons[] = {StopReason::eos,    StopReason::ending_rule, StopReason::stop_string,
                                       StopReason::budget, StopReason::context,     StopReason::cancelled};

// From the generation loop's reason (the token loop's "eos", "max_new_tokens", "max_positions",
// "stop", "cancelled"; NotaGen's piece loop's "eos", "max_chars", "max_patches");
// ended_by_rule: the ending push ended it (TuneSteering::ended_by_budget).
inline StopReason stop_reason_of(const std::string& loop_reason, bool ended_by_rule = false) {
  if (ended_by_rule) return StopReason::ending_rule;
  if (loop_reason == "eos") return StopReason::eos;
  if (loop_reason == "stop") return StopReason::stop_string;
  if (loop_reason == "max_positions") return StopReason::context;
  if (loop_reason == "cancelled") return StopReason::cancelled;
  return StopReason::budget;  // max_new_tokens, max_chars, max_patches
}

// The name in JSON and logs.
inline const char* to_string(StopReason r) {
  switch (r) {
    case StopReason::eos: return "eos";
    case StopReason::ending_rule: return "ending_rule";
    case StopReason::stop_string: return "stop";
    case StopReason::budget: return "max_new_tokens";
    case StopReason::context: return "max_positions";
    case StopReason::cancelled: return "cancelled";
  }
  return "max_new_tokens";
}

// OpenAI's finish_reason, the one mapping every route uses (GenerationJob's outcome): "stop"
// where the text ended by itself (the model's EOS: a tune that closed on its own) or at a stop
// string; "length" where a limit cut it: the token budget, the context, and the music
// constraint's budget rule (ending_rule: the ending push closed the tune at a bar line because
// the budget was running out; clean, but ended by the budget, so "length"). A cancelled
// generation has no reader to tell; "length" if asked.
inline const char* finish_reason(StopReason r) {
  return r == StopReason::eos || r == StopReason::stop_string ? "stop" : "length";
}

// For people: "the model ended it" and the like (the CLI's summary line; the page gets these
// words from GET /api/music's stop_reasons).
inline const char* describe(StopReason r) {
  switch (r) {
    case StopReason::eos: return "the model ended it";
    case StopReason::ending_rule: return "the ending rule closed it at a bar line as the token budget ran out";
    case StopReason::stop_string: return "a stop string appeared";
    case StopReason::budget: return "the token budget ran out";
    case StopReason::context: return "the model's context was full";
    case StopReason::cancelled: return "cancelled";
  }
  return "";
}

}  // namespace duet::edge
