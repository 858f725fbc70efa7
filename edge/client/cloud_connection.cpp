#include "edge/client/cloud_connection.hpp"

#include <zmq_addon.hpp>

#include <atomic>

#include "common/spin_window.hpp"
#include "protocol/curve.hpp"
#include "protocol/recv.hpp"
#include "protocol/validate.hpp"

namespace duet::edge {

namespace p = protocol;

// Watches the socket's own events, to tell "nobody listens" from "refused our key" from "the
// CURVE handshake never completed", which all look like silence on the data socket.
struct CloudConnection::Monitor {
  zmq::socket_t pair;
  bool connected = false, handshook = false, auth_refused = false, handshake_failed = false;
  int auth_status = 0;

  Monitor(zmq::context_t& ctx, zmq::socket_t& watched) : pair(ctx, zmq::socket_type::pair) {
    static std::atomic<int> counter{0};
    const std::string addr = "inproc://duet-edge-monitor-" + std::to_string(counter++);
    // Only the events fail_silence reads. libzmq's I/O thread sends each event with a blocking
    // send while it holds the monitor's lock: with ZMQ_EVENT_ALL, an idle pooled connection to a
    // stopped daemon queues three events per reconnect attempt (every 100 ms) until the pair's
    // queue is full, the I/O thread blocks, and closing the socket waits on that lock forever.
    constexpr int kEvents = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor(watched.handle(), addr.c_str(), kEvents) != 0)
      throw std::runtime_error("cannot monitor the edge socket: " + std::string(zmq_strerror(zmq_errno())));
    pair.connect(addr);
  }
  void drain() {
    while (true) {
      std::vector<zmq::message_t> ev;
      if (!zmq::recv_multipart(pair, std::back_inserter(ev), zmq::recv_flags::dontwait) || ev.empty()) return;
      if (ev[0].size() < 6) continue;
      uint16_t event;
      uint32_t value;
      std::memcpy(&event, ev[0].data(), 2);
      std::memcpy(&value, static_cast<const char*>(ev[0].data()) + 2, 4);
      switch (event) {
        case ZMQ_EVENT_CONNECTED: connected = true; break;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: handshook = true; break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
          auth_refused = true;
          auth_status = static_cast<int>(value);
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: handshake_failed = true; break;
        default: break;
      }
    }
  }
};

CloudConnection::CloudConnection(const ConnectionOptions& opts, const std::string& model_fingerprint)
    : opts_(opts), fingerprint_(model_fingerprint) {
  socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 0);
  monitor_ = std::make_unique<Monitor>(ctx_, *socket_);
  if (!opts.insecure)
    p::configure_curve_client(*socket_, p::load_keypair(opts.client_secret_key), p::load_public_key(opts.server_public_key));
  socket_->connect(opts.endpoint);
  hello();
}

CloudConnection::~CloudConnection() {
  if (!socket_) return;
  // read what the monitor queued, so that libzmq's I/O thread is not blocked on sending an event
  // while we wait for it to stop the monitor
  monitor_->drain();
  zmq_socket_monitor(socket_->handle(), nullptr, 0);
  monitor_->pair.set(zmq::sockopt::linger, 0);
}

void CloudConnection::fail_silence(const char* what, std::chrono::milliseconds waited) {
  monitor_->drain();
  const std::string ep = opts_.endpoint;
  const std::string secs = std::to_string(waited.count() / 1000.0).substr(0, 4) + " s";
  if (monitor_->auth_refused)
    throw CloudError(CloudFailure::not_authorized, p::ErrorCode::not_authorized,
                     "the daemon at " + ep + " refused this client's key (ZAP status " +
                         std::to_string(monitor_->auth_status) +
                         "): copy this client's public NAME.key into the daemon's authorized_keys folder");
  if (!opts_.insecure && monitor_->connected && !monitor_->handshook)
    throw CloudError(CloudFailure::handshake, p::ErrorCode::ok,
                     "connected to " + ep + " but the CURVE handshake did not complete within " + secs +
                         ": the pinned server key (" + opts_.server_public_key +
                         ") is probably not this daemon's, or the daemon runs --insecure");
  // plain TCP: a daemon that requires CURVE drops the connection at the ZMTP greeting
  if (opts_.insecure && monitor_->connected && (monitor_->handshake_failed || !monitor_->handshook))
    throw CloudError(CloudFailure::handshake, p::ErrorCode::ok,
                     "connected to " + ep + " but the ZMTP handshake did not complete within " + secs +
                         ": this edge runs insecure (no CURVE) and the daemon probably requires CURVE; drop "
                         "--insecure and give --server-key and --client-key");
  if (!monitor_->connected)
    throw CloudError(CloudFailure::unreachable, p::ErrorCode::ok,
                     "no duet-cloud daemon reachable at " + ep + " within " + secs + " (" + what +
                         "): is it running, and is the address right?");
  throw CloudError(CloudFailure::timeout, p::ErrorCode::ok,
                   std::string("no reply from the daemon at ") + ep + " within " + secs + " (" + what + ")");
}

p::DecodedMessage CloudConnection::request(const p::MessageBody& body, std::vector<zmq::message_t> tensors,
                                           std::vector<zmq::message_t>& reply,
                                           std::optional<std::chrono::milliseconds> timeout) {
  const uint64_t rid = next_request_++;
  const auto limit = timeout ? std::min(*timeout, opts_.timeout) : opts_.timeout;
  monitor_->drain();  // an idle connection's events (a reconnect) are old news; keeps the queue short
  std::vector<zmq::message_t> frames;
  p::append_message(frames, rid, body, std::move(tensors));
  if (!zmq::send_multipart(*socket_, frames, zmq::send_flags::dontwait)) {
    // DEALER queues while connecting; a full queue means nothing ever connected
    fail_silence(std::string(p::to_string(p::kind_of(body))).c_str(), limit);
  }
  const auto sent = std::chrono::steady_clock::now();
  const auto deadline = sent + limit;
  SpinWindow spin(opts_.spin);
  spin.touch(sent);
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) fail_silence(std::string(p::to_string(p::kind_of(body))).c_str(), limit);
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}, {monitor_->pair.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, spin.active(std::chrono::steady_clock::now()) ? std::chrono::milliseconds(0)
                                                                       : std::min(left, std::chrono::milliseconds(100)));
    if (items[1].revents & ZMQ_POLLIN) {
      monitor_->drain();
      if (monitor_->auth_refused) fail_silence("handshake", limit);
    }
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    if (!p::recv_bounded(*socket_, reply, p::kMaxFramesPerMessage + 1, zmq::recv_flags::dontwait)) continue;
    p::DecodedMessage msg = p::decode(reply);
    if (msg.request_id != rid && !(msg.kind == p::MessageKind::error && msg.request_id == 0))
      continue;  // a late reply to a request we gave up on
    if (msg.kind == p::MessageKind::error) {
      const auto& e = msg.as<p::Error>();
      throw CloudError(CloudFailure::daemon_error, e.code,
                       "the daemon refused " + std::string(p::to_string(p::kind_of(body))) + ": " +
                           p::printable(e.message, p::kMaxErrorMessageChars) + " [" + std::string(p::to_string(e.code)) + "]");
    }
    return msg;
  }
}

void CloudConnection::hello(std::optional<std::chrono::milliseconds> timeout) {
  p::Hello h;
  h.model_fingerprint = fingerprint_;
  h.wire_dtype = opts_.wire_dtype;
  h.client_name = opts_.client_name;
  h.edge_blocks = opts_.edge_blocks;
  std::vector<zmq::message_t> reply;
  auto msg = request(h, {}, reply, timeout);
  server_ = msg.as<p::HelloReply>();
  p::check_hello_reply(server_, fingerprint_, opts_.wire_dtype);
  try {
    p::check_block_split(opts_.edge_blocks, server_.first_block);
  } catch (const p::ProtocolError& e) {
    throw CloudError(CloudFailure::daemon_error, e.code(), std::string("duet-cloud at ") + opts_.endpoint + ": " + e.what());
  }
}

}  // namespace duet::edge
