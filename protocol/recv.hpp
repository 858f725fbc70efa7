// Receiving one multipart message without letting the peer decide how big our frame vector
// gets. ZMQ_MAXMSGSIZE bounds each frame, nothing bounds the count: zmq::recv_multipart would
// collect every frame a peer sends.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include <zmq.hpp>

namespace duet::protocol {

// Reads every frame of the next message; keeps the first `keep` frames in `out` (cleared first)
// and drops the rest. Returns the message's total frame count, or nullopt when no message was
// ready (EAGAIN with dontwait or a receive timeout). `total_bytes`, when given, gets the payload
// bytes of every frame, kept or dropped.
//
// Pick keep = routing frames + DecodeLimits::max_frames + 1: an over-long message then still
// arrives with more frames than decode() allows, and is refused as too_large instead of being
// silently truncated into something that looks valid.
std::optional<std::size_t> recv_bounded(zmq::socket_t& socket, std::vector<zmq::message_t>& out,
                                        std::size_t keep,
                                        zmq::recv_flags flags = zmq::recv_flags::none,
                                        std::size_t* total_bytes = nullptr);

}  // namespace duet::protocol
