#pragma once
// One simulated edge for duet-load: its own CloudConnection (own ZeroMQ context and I/O thread,
// own DEALER socket and CURVE handshake, as a separate machine would have) and one session.
// No LibTorch: a step copies precomputed wire-dtype rows into a frame, sends it, waits, and
// keeps the reply's bytes, so the edge's own compute stays out of the measured figure.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "edge/client/cloud_connection.hpp"

namespace duet::bench {

struct StepTiming {
  double round_trip_ms = 0;  // send to decoded reply, on this side
  double cloud_ms = -1;      // Result.cloud_compute_us, the daemon's own account
};

class LoadEdge {
 public:
  // Connects and shakes hands (throws edge::CloudError with a sentence on failure).
  LoadEdge(const edge::ConnectionOptions& opts, const std::string& fingerprint);
  ~LoadEdge();  // closes the session, best effort
  LoadEdge(const LoadEdge&) = delete;
  LoadEdge& operator=(const LoadEdge&) = delete;

  void open(uint32_t max_positions);
  void close();
  // Positions [start, start + n) from `rows` ([n, hidden] in the wire dtype); the last position's
  // output row is appended to `out`. Checks the reply against the request (validate_result).
  StepTiming forward(uint32_t start, uint32_t n, const std::byte* rows, std::vector<std::byte>& out);
  size_t row_bytes() const { return row_bytes_; }

 private:
  edge::CloudConnection conn_;
  size_t row_bytes_ = 0;
  uint64_t session_ = 0;
};

}  // namespace duet::bench
