// Error codes that cross the wire, and the exception that carries one inside a process.
// Inside a process: throw ProtocolError. At the boundary: catch it and send Error{code, what()}.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace duet::protocol {

// Numeric values are on the wire: append new codes, never renumber or reuse one.
enum class ErrorCode : std::uint16_t {
  ok = 0,
  bad_message = 1,           // malformed header: msgpack, magic, kind, field types, frame count
  unsupported_version = 2,   // peer speaks another protocol version
  model_mismatch = 3,        // fingerprints differ: the two sides hold different checkpoints
  bad_dtype = 4,             // dtype not a wire dtype, or not the one negotiated
  bad_shape = 5,             // rank, hidden size or row count disagrees with the header
  frame_size_mismatch = 6,   // tensor frame bytes != product(shape) * element size
  too_large = 7,             // header, frame count or message bytes over a limit
  unknown_session = 8,       // session id the daemon does not know (closed, expired, never opened)
  position_gap = 9,          // start_pos does not continue the session
  session_limit = 10,        // daemon already serves its maximum number of sessions
  position_limit = 11,       // too many positions for one forward or for the session
  kv_memory_limit = 12,      // KV cache memory budget exhausted
  not_authorized = 13,       // client key not allowed (normally refused by ZAP before this)
  internal = 14,             // a bug or unexpected failure on the replying side
  shutting_down = 15,        // daemon is stopping; retry elsewhere or later
  handshake_required = 16,   // a session request arrived before a successful hello
  session_busy = 17,         // too many forwards of one session waiting; wait for the replies
  quota_exceeded = 18,       // this client key's share (sessions or KV) is used up; others may still be served
  non_finite = 19,           // a tensor holds NaN or infinity (activations never do: refused, not computed)
  server_busy = 20,          // the daemon holds as many queued request bytes as it allows (this key's or all)
  stage_unavailable = 21,    // a stage worker of the daemon is missing: retry shortly, replaying the session
};

// Stable snake_case name ("bad_shape"); "unknown_error" for a value this build does not know
// (a newer peer may send codes we lack: keep the number, don't reject the reply).
std::string_view to_string(ErrorCode code) noexcept;

// True for the values listed above.
bool is_known(ErrorCode code) noexcept;

class ProtocolError : public std::runtime_error {
 public:
  ProtocolError(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// Renders peer-supplied text for an error sentence: non-printable bytes as \xNN, cut to max_chars
// with "..." so a hostile peer cannot flood logs or smuggle control characters into them.
std::string printable(std::string_view text, std::size_t max_chars = 64);

}  // namespace duet::protocol
