#pragma once
// duet-load's timed phase: N simulated edges (one thread, one connection, one session each)
// replay precomputed rows teacher-forced: a prefill of the prompt, then one single-position
// forward per reference token. Every session keeps each returned hidden row for the check.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "edge/client/cloud_connection.hpp"

namespace duet::bench {

using Clock = std::chrono::steady_clock;

struct SessionScript {
  const std::byte* prefill = nullptr;  // [prompt_len, hidden], wire dtype
  const std::byte* decode = nullptr;   // [steps, hidden]: row j goes at position prompt_len + j
  uint32_t prompt_len = 0, steps = 0;
};

struct SessionTrace {
  double prefill_ms = 0, prefill_cloud_ms = -1;
  std::vector<double> step_ms, step_cloud_ms;  // one per decode forward
  Clock::time_point decode_start, decode_end;
  std::vector<std::byte> hidden;  // [1 + steps, hidden]: prefill's last row, then each step's
  std::string error;              // empty when the session ran to the end
};

struct RunOptions {
  edge::ConnectionOptions conn;
  std::string fingerprint;
  uint32_t max_positions = 0;  // asked for at open_session
  double stagger_ms = 0;       // session i starts i * stagger_ms after the common start
  // Called once every session has finished decoding, before any closes (GPU memory is read here).
  std::function<void()> while_open;
};

struct RunResult {
  std::vector<SessionTrace> sessions;
  double connect_s = 0;      // all connections and sessions opened (untimed for the figures)
  double decode_wall_s = 0;  // first decode forward sent -> last decode reply, over all sessions
};

RunResult run_sessions(const std::vector<SessionScript>& scripts, const RunOptions& opts);

}  // namespace duet::bench
