#pragma once
// The edge's link to a duet-cloud daemon: a DEALER socket (CurveZMQ with the server key pinned,
// unless insecure), the hello handshake, and request/reply with a timeout. Failures become
// CloudError with a code and a sentence that says what to do, including the ones the transport
// hides: unreachable daemon, refused client key, wrong pinned server key.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "protocol/errors.hpp"
#include "protocol/messages.hpp"

namespace duet::edge {

enum class CloudFailure {
  daemon_error,    // the daemon answered with an Error (see protocol_code)
  unreachable,     // no TCP connection within the timeout
  not_authorized,  // the daemon's ZAP handler refused our key
  handshake,       // connected, but CURVE never completed (wrong pinned server key?)
  timeout,         // connected and shook hands, but no reply in time
};

class CloudError : public std::runtime_error {
 public:
  CloudError(CloudFailure f, protocol::ErrorCode code, const std::string& msg)
      : std::runtime_error(msg), failure_(f), code_(code) {}
  CloudFailure failure() const { return failure_; }
  protocol::ErrorCode protocol_code() const { return code_; }

 private:
  CloudFailure failure_;
  protocol::ErrorCode code_;
};

struct ConnectionOptions {
  std::string endpoint = "tcp://127.0.0.1:7700";
  bool insecure = false;
  std::string client_secret_key;  // our NAME.key_secret
  std::string server_public_key;  // the daemon's NAME.key, pinned
  std::string client_name = "duet-edge";
  protocol::WireDtype wire_dtype = protocol::WireDtype::f32;
  uint32_t edge_blocks = 0;  // blocks [0, edge_blocks) run here; the daemon must run from there on
  std::chrono::milliseconds timeout{10000};
  // after sending, poll for the reply without sleeping this long (common/spin_window.hpp); 0: off
  std::chrono::microseconds spin{0};
};

class CloudConnection {
 public:
  // Connects and shakes hands; throws CloudError (or protocol::KeyError for bad key files).
  CloudConnection(const ConnectionOptions& opts, const std::string& model_fingerprint);
  ~CloudConnection();
  CloudConnection(const CloudConnection&) = delete;
  CloudConnection& operator=(const CloudConnection&) = delete;

  const protocol::HelloReply& server() const { return server_; }
  const ConnectionOptions& options() const { return opts_; }

  // One request, its reply (an Error reply becomes CloudError). `reply` owns the frames that the
  // returned message's tensor views point into.
  // timeout: shorter than the connection's, for this request (a close, a health probe).
  protocol::DecodedMessage request(const protocol::MessageBody& body, std::vector<zmq::message_t> tensors,
                                   std::vector<zmq::message_t>& reply,
                                   std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Hello again: after the daemon forgot this connection (idle timeout) or restarted; also
  // what a health probe sends (any daemon answers it, whatever state it holds for us).
  void hello(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

 private:
  struct Monitor;
  [[noreturn]] void fail_silence(const char* what, std::chrono::milliseconds waited);
  ConnectionOptions opts_;
  std::string fingerprint_;
  zmq::context_t ctx_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<Monitor> monitor_;
  protocol::HelloReply server_;
  uint64_t next_request_ = 1;
};

}  // namespace duet::edge
