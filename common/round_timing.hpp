#pragma once
// Where one backbone call's time went, as the backbone saw it (per-hop telemetry). A remote
// backbone fills every field from its request clock and the daemon's Result.timing; the
// generation loop copies it into that round's StepStats whatever the round carries (one token, or
// k drafted positions), so the decomposition composes with any loop. No LibTorch.
#include <vector>

namespace duet {

struct RoundTiming {
  double request_ms = -1;  // forwards sent -> replies received and decoded, as the edge timed them
  double daemon_ms = -1;   // the daemon's own account of those forwards (received -> reply ready)
  double queue_ms = -1;    // ... of which waiting for the first step that ran them
  std::vector<double> stage_ms;  // ... of which each stage's compute (empty: not reported)
  int forwards = 0;        // messages in the call (a long prefill goes in chunks; a resume replays)

  // uplink + downlink: the request's time outside the daemon (encryption, the wire, both ways)
  double link_ms() const { return request_ms >= 0 && daemon_ms >= 0 ? request_ms - daemon_ms : -1; }
  double stages_total_ms() const {
    double t = 0;
    for (double s : stage_ms) t += s;
    return stage_ms.empty() ? -1 : t;
  }
};

}  // namespace duet
