// Bounds applied to every message before any field is trusted. Defaults fit the protocol as
// written; a daemon narrows max_message_bytes to what it announced in HelloReply.
#pragma once

#include <cstddef>
#include <cstdint>

namespace duet::protocol {

// Bytes of the msgpack header frame. Real headers are ~100-300 bytes; the cap keeps a peer from
// making us parse megabytes of msgpack before we have read a single field.
inline constexpr std::size_t kMaxHeaderBytes = 4096;

// Header frame + tensor frames. Every kind of protocol v1 carries at most one tensor frame; the
// extra room is for later kinds (e.g. int8 activations with a scales frame).
inline constexpr std::size_t kMaxFramesPerMessage = 4;

// Longest text field (names, error sentences) accepted from a peer.
inline constexpr std::size_t kMaxNameChars = 128;
inline constexpr std::size_t kMaxErrorMessageChars = 1024;

// Largest tensor rank we parse; anything but 2 is then rejected with a sentence saying so.
inline constexpr std::size_t kMaxTensorRank = 8;

// Entries of result.timing.stage_us: one per pipeline stage of the daemon.
inline constexpr std::size_t kMaxTimedStages = 64;

struct DecodeLimits {
  std::size_t max_header_bytes = kMaxHeaderBytes;
  std::size_t max_frames = kMaxFramesPerMessage;
  // Sum of all frame sizes (header + tensors). ZMQ_MAXMSGSIZE bounds each frame only.
  std::uint64_t max_message_bytes = std::uint64_t{1} << 30;
};

}  // namespace duet::protocol
