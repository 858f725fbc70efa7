// CurveZMQ for duet sockets: key files (curve_keys.hpp), the ZAP allow-list (zap.hpp), and the
// socket options that turn them on. Encryption is the only mode offered here; a caller that
// wants plain TCP must skip these calls on purpose (and log that it did).
//
// Server (cloud daemon):
//   zmq::context_t ctx;
//   ZapAuthenticator auth(ctx, load_authorized_keys(dir));     // binds the ZAP endpoint first
//   zmq::socket_t router(ctx, zmq::socket_type::router);
//   configure_curve_server(router, load_keypair("server.key_secret"), auth);
//   set_max_message_size(router, limits.max_message_bytes);
//   router.bind("tcp://0.0.0.0:7000");
// Client (edge):
//   zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
//   configure_curve_client(dealer, load_keypair("edge.key_secret"), load_public_key("server.key"));
//   dealer.connect("tcp://host:7000");
#pragma once

#include <cstdint>
#include <string_view>

#include <zmq.hpp>

#include "protocol/curve_keys.hpp"
#include "protocol/zap.hpp"

namespace duet::protocol {

// Bytes CURVE adds to every frame on the wire (MESSAGE command: name, nonce, MAC, flags).
// ZMQ_MAXMSGSIZE is checked against the wire size, so the limit must include it.
inline constexpr std::uint64_t kCurveFrameOverhead = 33;

// CURVE server with the given secret key; ZAP domain taken from `auth`, so a server socket
// cannot be configured without an allow-list handler on the context. Call before bind():
// throws std::logic_error on a socket that is already bound, KeyError on a malformed key.
void configure_curve_server(zmq::socket_t& socket, const CurveKeyPair& server_keys,
                            const ZapAuthenticator& auth);

// CURVE client with its own key pair, pinning the server's public key. Call before connect().
void configure_curve_client(zmq::socket_t& socket, const CurveKeyPair& client_keys,
                            std::string_view server_public_z85);

// ZMQ_MAXMSGSIZE: largest frame the socket accepts, given as payload bytes; adds the CURVE
// overhead when `curve`. libzmq drops the connection of a peer that exceeds it. It bounds each
// frame, not the message: decode() still bounds frame count and total bytes.
void set_max_message_size(zmq::socket_t& socket, std::uint64_t max_frame_payload_bytes,
                          bool curve = true);

}  // namespace duet::protocol
