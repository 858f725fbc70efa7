#include "protocol/curve.hpp"

#include <limits>
#include <stdexcept>
#include <string>

namespace duet::protocol {
namespace {

void check_key(std::string_view z85, const char* what) {
  if (!is_valid_z85_key(z85))
    throw KeyError(std::string(what) + " is not a CURVE key: expected 40 Z85 characters");
}

}  // namespace

void configure_curve_server(zmq::socket_t& socket, const CurveKeyPair& server_keys,
                            const ZapAuthenticator& auth) {
  check_key(server_keys.secret_z85, "server secret key");
  if (!socket.get(zmq::sockopt::last_endpoint).empty())
    throw std::logic_error(
        "configure_curve_server called on a socket that is already bound; security options "
        "only apply to later binds");
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, std::string(server_keys.secret_z85));
  socket.set(zmq::sockopt::zap_domain, auth.domain());
  // ZMQ_ZAP_ENFORCE_DOMAIN (draft in libzmq 4.3): refuse clients when ZAP is unreachable instead
  // of letting them in. Set it where the library knows it; EINVAL means an older or non-draft
  // build, where the bound handler plus a non-empty domain already give the same result.
  constexpr int kZapEnforceDomain = 93;
  const int on = 1;
  (void)zmq_setsockopt(socket.handle(), kZapEnforceDomain, &on, sizeof on);
}

void configure_curve_client(zmq::socket_t& socket, const CurveKeyPair& client_keys,
                            std::string_view server_public_z85) {
  check_key(client_keys.public_z85, "client public key");
  check_key(client_keys.secret_z85, "client secret key");
  check_key(server_public_z85, "server public key");
  socket.set(zmq::sockopt::curve_serverkey, std::string(server_public_z85));
  socket.set(zmq::sockopt::curve_publickey, std::string(client_keys.public_z85));
  socket.set(zmq::sockopt::curve_secretkey, std::string(client_keys.secret_z85));
}

void set_max_message_size(zmq::socket_t& socket, std::uint64_t max_frame_payload_bytes,
                          bool curve) {
  const std::uint64_t overhead = curve ? kCurveFrameOverhead : 0;
  const auto cap = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (max_frame_payload_bytes == 0 || max_frame_payload_bytes > cap - overhead)
    throw std::invalid_argument("max message size " + std::to_string(max_frame_payload_bytes) +
                                " bytes is out of range; expected 1 to " +
                                std::to_string(cap - overhead));
  socket.set(zmq::sockopt::maxmsgsize,
             static_cast<std::int64_t>(max_frame_payload_bytes + overhead));
}

}  // namespace duet::protocol
