#include "cloud/server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "cloud/connection_guard.hpp"
#include "cloud/daemon_model.hpp"
#include "cloud/engine.hpp"
#include "cloud/metrics.hpp"
#include "cloud/metrics_http.hpp"
#include "cloud/peers.hpp"
#include "common/spin_window.hpp"
#include "protocol/curve.hpp"
#include "protocol/messages.hpp"
#include "protocol/recv.hpp"
#include "protocol/validate.hpp"

namespace duet::cloud {

namespace p = protocol;
using p::ErrorCode;
using p::ProtocolError;

// ZeroMQ I/O threads: each connection's CURVE work (encrypt, decrypt) runs on one of them, so with
// many edges one thread serialises every reply and request of a step; "auto" (0) takes a quarter of
// the cores, 1 to 4.
int io_threads_for(const CloudConfig& c) {
  if (c.io_threads > 0) return static_cast<int>(c.io_threads);
  return static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency() / 4, 1u, 4u));
}

// The socket thread: receives, decodes, answers hellos, hands session requests to the engine
// thread and sends what it answers. Nothing here waits on the model.
struct Server::Impl {
  CloudConfig cfg;
  std::unique_ptr<DaemonModel> model;  // checkpoint, pipeline, fingerprint (LibTorch behind it)
  p::ServerLimits limits;
  uint32_t allowed_dtypes = 0;
  zmq::context_t ctx;
  std::unique_ptr<p::ZapAuthenticator> zap;  // declared after ctx: destroyed first
  std::unique_ptr<zmq::socket_t> router;
  std::unique_ptr<ConnectionGuard> guard;  // declared after router: stops monitoring first
  zmq::socket_t wake_rx, wake_tx;          // the engine thread says "replies are ready"
  std::unique_ptr<Engine> engine;
  std::unique_ptr<MetricsServer> metrics;
  PeerMap peers;
  NetworkStats net;
  // the request being handled: who sent it (set by handle() before anything else runs)
  std::string current_user;
  int current_fd = -1;

  explicit Impl(const CloudConfig& c)
      : cfg(c), ctx(io_threads_for(c)), wake_rx(ctx, zmq::socket_type::pair), wake_tx(ctx, zmq::socket_type::pair) {
    cfg.validate();
    for (const auto& d : cfg.wire_dtypes) allowed_dtypes |= p::dtype_bit(p::parse_dtype_or_throw(d));
    model = std::make_unique<DaemonModel>(cfg);
    limits = model->server_limits();

    const std::string wake = "inproc://duet.engine-wake." + std::to_string(reinterpret_cast<uintptr_t>(this));
    wake_rx.set(zmq::sockopt::linger, 0);
    wake_tx.set(zmq::sockopt::linger, 0);
    wake_rx.bind(wake);
    wake_tx.connect(wake);
    // the allow-list first: its size decides the fair default quotas
    std::optional<p::CurveKeyPair> server_keys;
    std::vector<p::AuthorizedKey> allowed;
    if (!cfg.insecure) {
      server_keys = p::load_keypair(cfg.secret_key);
      allowed = p::load_authorized_keys(cfg.authorized_keys);
    }
    auto eo = model->engine_options(cfg.insecure ? 0 : allowed.size());
    const auto& dq = eo.sessions.default_quota;
    spdlog::info("per-key quota: {} sessions, {} of the KV pool{}; requests queued: {} MiB per key, {} MiB in all",
                 dq.max_sessions ? std::to_string(dq.max_sessions) + " of " + std::to_string(cfg.max_sessions) : "all",
                 dq.kv_share < 1.0 ? std::to_string(int(dq.kv_share * 100)) + " %" : "all",
                 cfg.key_max_sessions || cfg.key_kv_share ? "" : " (the fair default: [quotas] or --key-max-sessions/--key-kv-share set it)",
                 cfg.max_queued_mb_per_key, cfg.max_queued_mb);
    engine = std::make_unique<Engine>(model->pipeline(), std::move(eo), [this] {
      // engine thread: one pending wake is enough; a full pipe already says it
      (void)wake_tx.send(zmq::message_t(), zmq::send_flags::dontwait);
    });

    router = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
    router->set(zmq::sockopt::linger, 0);
    // a reply to a vanished peer fails (EHOSTUNREACH) and one to a full queue fails (EAGAIN, with
    // dontwait) instead of being dropped silently: the daemon counts both and acts on them
    router->set(zmq::sockopt::router_mandatory, 1);
    router->set(zmq::sockopt::sndhwm, static_cast<int>(cfg.send_queue_messages));
    router->set(zmq::sockopt::handshake_ivl, static_cast<int>(cfg.handshake_timeout_ms));
    // dead links (a host gone without FIN) are found by heartbeats instead of TCP's hours
    router->set(zmq::sockopt::heartbeat_ivl, 5000);
    router->set(zmq::sockopt::heartbeat_timeout, 15000);
    ConnectionLimits cl;
    cl.max_handshaking = cfg.max_handshaking;
    cl.max_handshaking_per_source = cfg.max_handshaking_per_source;
    cl.handshake_timeout = std::chrono::milliseconds(cfg.handshake_timeout_ms);
    cl.max_pending_input_bytes = cfg.max_pending_input_mb << 20;
    guard = std::make_unique<ConnectionGuard>(ctx, *router, cl);
    if (cfg.insecure) {
      spdlog::warn("--insecure: CURVE is OFF. Activations and tokens cross the network in the clear and any "
                   "client can connect. Use only on a trusted network for tests.");
    } else {
      const auto& keys = *server_keys;
      p::ZapAuthenticator::Options zo;
      zo.on_decision = [](const p::ZapDecision& d) {
        if (d.allowed) spdlog::info("client '{}' admitted from {}", d.user, d.address);
        else spdlog::warn("refused a {} client from {} (key {}): {}", d.mechanism, d.address, d.public_z85, d.reason);
      };
      zap = std::make_unique<p::ZapAuthenticator>(ctx, allowed, zo);
      p::configure_curve_server(*router, keys, *zap);
      spdlog::info("CURVE on; {} authorized client key(s) from {}", allowed.size(), cfg.authorized_keys);
    }
    p::set_max_message_size(*router, limits.max_message_bytes, !cfg.insecure);
    router->bind(cfg.listen);
    spdlog::info("listening on {}", endpoint());
    if (!cfg.metrics_listen.empty()) {
      MetricsHttpOptions mo;
      mo.address = cfg.metrics_listen;
      if (!cfg.metrics_token_file.empty()) mo.bearer_token = read_bearer_token_file(cfg.metrics_token_file);
      metrics = std::make_unique<MetricsServer>(mo, [this] {
        return render_metrics(engine->stats(), net.snapshot());
      });
      spdlog::info("metrics (Prometheus text) on http://{}/metrics", metrics->address());
    }
  }

  std::string endpoint() const { return router->get(zmq::sockopt::last_endpoint); }

  // Replies never wait: a peer whose queue is full loses this reply (counted), and one that stays
  // full for reply_stall_timeout_ms is disconnected. A blocking send here would let one client
  // that never reads freeze the loop that serves everyone.
  void send(const std::string& peer, uint64_t request_id, const p::MessageBody& body,
            std::vector<zmq::message_t> tensors = {}) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(peer.data(), peer.size());
    p::append_message(frames, request_id, body, std::move(tensors));
    auto it = peers.find(peer);
    try {
      if (zmq::send_multipart(*router, frames, zmq::send_flags::dontwait)) {
        if (it != peers.end()) it->second.full_since.reset();
        return;
      }
      // EAGAIN: the peer's queue (send_queue_messages) is full
      ++net.replies_dropped;
      if (it == peers.end()) return;
      Peer& pr = it->second;
      ++pr.replies_dropped;
      const auto now = Clock::now();
      if (!pr.full_since) pr.full_since = now;
      if (now - *pr.full_since > std::chrono::milliseconds(cfg.reply_stall_timeout_ms)) {
        spdlog::warn("connection {} ('{}') has not read its replies for {} ms ({} dropped): disconnected", hex_id(peer),
                     p::printable(pr.user), cfg.reply_stall_timeout_ms, pr.replies_dropped);
        if (pr.fd >= 0) guard->drop(pr.fd);
        ++net.peers_dropped;
        peers.erase(it);  // its sessions stay until they expire; the key may reconnect and go on
      }
    } catch (const zmq::error_t& e) {
      // EHOSTUNREACH: the connection is gone; forget it (its sessions expire as usual)
      spdlog::warn("reply to connection {} not sent: {}", hex_id(peer), e.what());
      if (it != peers.end()) peers.erase(it);
    }
  }

  void send_error(const std::string& peer, uint64_t request_id, ErrorCode code, const std::string& msg) {
    net.refuse(std::string(p::to_string(code)));
    p::Error e;
    e.code = code;
    e.message = msg.size() > p::kMaxErrorMessageChars ? msg.substr(0, p::kMaxErrorMessageChars) : msg;
    send(peer, request_id, e);
  }

  Peer& greeted_peer(const std::string& peer) {
    auto it = peers.find(peer);
    // note_peer already forgot this routing id's hello if another key now uses it
    if (it == peers.end() || !it->second.greeted)
      throw ProtocolError(ErrorCode::handshake_required,
                          "send hello first: this connection has not shaken hands, or was idle longer than " +
                              std::to_string(cfg.idle_timeout_s) + " s and was forgotten");
    return it->second;
  }

  // Sessions belong to the key CURVE proved, not to the routing id (which the client chooses).
  // Without CURVE there is no identity but the connection.
  std::string owner(const std::string& peer) const {
    return cfg.insecure ? "connection:" + hex_id(peer) : "key:" + current_user;
  }

  void on_hello(const std::string& peer, uint64_t rid, const p::Hello& m) {
    p::check_hello(m, model->fingerprint(), allowed_dtypes);
    p::check_block_split(m.edge_blocks, model->first_block());
    auto& pr = peers[peer];  // note_peer made it, for this key
    pr.greeted = true;
    pr.wire_dtype = m.wire_dtype;
    p::HelloReply r;
    r.model_fingerprint = model->fingerprint();
    r.hidden_size = model->hidden_size();
    r.wire_dtype = m.wire_dtype;
    r.limits = limits;
    r.server_name = cfg.name;
    r.first_block = model->first_block();
    spdlog::info("hello from '{}' as '{}' (connection {}), wire {}", p::printable(m.client_name),
                 p::printable(current_user), hex_id(peer), p::dtype_name(m.wire_dtype));
    send(peer, rid, r);
  }

  // Every connection that sends anything is tracked (its replies may fill its queue before any
  // hello); a routing id now used by another key starts afresh.
  void note_peer(const std::string& peer, Clock::time_point now) {
    Peer& pr = peers[peer];
    if (pr.user != current_user) pr = Peer{};
    pr.user = current_user;
    pr.last_seen = now;
    pr.fd = current_fd;
  }

  // At most 10 warnings per connection per 10 s: a client sending junk must not fill the disk.
  bool may_log(const std::string& peer) {
    auto it = peers.find(peer);
    if (it == peers.end()) return true;
    Peer& pr = it->second;
    const auto now = Clock::now();
    if (now - pr.log_window > std::chrono::seconds(10)) {
      if (pr.log_suppressed > 0)
        spdlog::warn("connection {}: {} more refused requests not logged", hex_id(peer), pr.log_suppressed);
      pr.log_window = now;
      pr.logged = 0;
      pr.log_suppressed = 0;
    }
    if (pr.logged < 10) {
      ++pr.logged;
      return true;
    }
    ++pr.log_suppressed;
    return false;
  }

  void handle(std::vector<zmq::message_t>& frames, size_t frame_count, size_t bytes) {
    const auto received = Clock::now();
    if (frames.size() < 2) return;
    const std::string peer(static_cast<const char*>(frames[0].data()), frames[0].size());
    current_fd = zmq_msg_get(frames[1].handle(), ZMQ_SRCFD);
    guard->note_received(current_fd, bytes, frame_count);
    const char* user = cfg.insecure ? nullptr : zmq_msg_gets(frames[1].handle(), "User-Id");
    current_user = user ? user : "";
    if (!cfg.insecure && current_user.empty()) return;  // cannot happen with ZAP on: nobody to answer
    note_peer(peer, received);
    uint64_t rid = 0;
    try {
      p::DecodeLimits dl;
      dl.max_message_bytes = limits.max_message_bytes;
      auto msg = p::decode(frames.data() + 1, frames.size() - 1, dl);
      rid = msg.request_id;
      if (msg.kind == p::MessageKind::hello) return on_hello(peer, rid, msg.as<p::Hello>());
      EngineRequest r;
      switch (msg.kind) {
        case p::MessageKind::open_session: r.body = msg.as<p::OpenSession>(); break;
        case p::MessageKind::forward: r.body = msg.as<p::Forward>(); break;
        case p::MessageKind::close_session: r.body = msg.as<p::CloseSession>(); break;
        default:
          throw ProtocolError(ErrorCode::bad_message,
                              "a cloud daemon does not accept '" + std::string(p::to_string(msg.kind)) + "' messages");
      }
      r.wire_dtype = greeted_peer(peer).wire_dtype;
      if (auto* f = std::get_if<p::Forward>(&r.body)) {
        // what needs no session state is checked before anything is queued (the engine checks
        // the session's positions and KV at its turn); NaN in, NaN out: never computed
        p::validate_forward(*f, {model->hidden_size(), r.wire_dtype, limits.max_positions_per_forward});
        p::check_finite_frame("forward hidden tensor", f->hidden, frames[2].data(), frames[2].size());
      }
      r.peer = peer;
      r.owner = owner(peer);
      r.request_id = rid;
      r.received = received;
      r.tensor_frame = 2;  // routing id, header, then the tensor (forward only; decode checked it is there)
      r.frames = std::move(frames);
      engine->submit(std::move(r));
    } catch (const ProtocolError& e) {
      if (may_log(peer)) spdlog::warn("connection {}: {} ({})", hex_id(peer), e.what(), p::to_string(e.code()));
      send_error(peer, rid, e.code(), e.what());
    } catch (const std::exception& e) {
      spdlog::error("connection {}: request {} failed: {}", hex_id(peer), rid, e.what());
      send_error(peer, rid, ErrorCode::internal, std::string("the daemon failed to read this request: ") + e.what());
    }
  }

  void send_replies() {
    for (auto& r : engine->take_replies()) {
      if (auto* e = std::get_if<p::Error>(&r.body); e && may_log(r.peer))
        spdlog::warn("connection {}: {} ({})", hex_id(r.peer), e->message, p::to_string(e->code));
      send(r.peer, r.request_id, r.body, std::move(r.tensors));
      net.handoff_out_ns += uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - r.ready).count());
      ++net.handoffs_out;
    }
  }

  // Connections that closed: the engine drops the forwards they queued and have not run.
  void forget_closed_connections() {
    for (int fd : guard->take_closed())
      for (auto it = peers.begin(); it != peers.end();) {
        if (it->second.fd != fd) {
          ++it;
          continue;
        }
        engine->connection_closed(it->first);
        it = peers.erase(it);
      }
  }

  void forget_idle_peers(Clock::time_point now) {
    const auto idle = std::chrono::seconds(cfg.idle_timeout_s);
    for (auto it = peers.begin(); it != peers.end();) {
      if (now - it->second.last_seen > idle) it = peers.erase(it);
      else ++it;
    }
  }

  void run(const std::atomic<bool>& stop) {
    std::atomic<bool> engine_stop{false};
    std::thread engine_thread([&] { engine->run(engine_stop); });
    auto next_expiry = Clock::now() + std::chrono::seconds(1);
    auto next_input_check = Clock::now();
    SpinWindow spin(std::chrono::microseconds(cfg.spin_us));
    try {
      while (!stop.load()) {
        zmq::pollitem_t items[] = {{static_cast<void*>(*router), 0, ZMQ_POLLIN, 0},
                                   {static_cast<void*>(guard->monitor()), 0, ZMQ_POLLIN, 0},
                                   {static_cast<void*>(wake_rx), 0, ZMQ_POLLIN, 0}};
        try {
          zmq::poll(items, 3, std::chrono::milliseconds(spin.active(Clock::now()) ? 0 : 100));
        } catch (const zmq::error_t& e) {
          if (e.num() == EINTR) continue;  // a signal: the loop condition decides
          throw;
        }
        if ((items[0].revents | items[2].revents) & ZMQ_POLLIN) spin.touch(Clock::now());
        if (items[1].revents & ZMQ_POLLIN) guard->drain_events();
        forget_closed_connections();
        if (items[2].revents & ZMQ_POLLIN) {
          zmq::message_t m;
          while (wake_rx.recv(m, zmq::recv_flags::dontwait)) {
          }
        }
        send_replies();
        // drain what is ready; every send is non-blocking, so this ends quickly and stop is seen
        for (int i = 0; i < 256 && (items[0].revents & ZMQ_POLLIN) && !stop.load(); ++i) {
          std::vector<zmq::message_t> frames;
          size_t bytes = 0;
          // routing id + at most max_frames + 1: an over-long message is refused, not truncated
          auto got = p::recv_bounded(*router, frames, 1 + p::kMaxFramesPerMessage + 1, zmq::recv_flags::dontwait, &bytes);
          if (!got) break;
          handle(frames, *got > 0 ? *got - 1 : 0, bytes > frames[0].size() ? bytes - frames[0].size() : 0);
        }
        const auto now = Clock::now();
        if (now >= next_input_check) {  // a fast sender moves ~100 MB in this interval: keep it short
          for (const auto& line : guard->enforce_pending_input()) spdlog::warn("{}", line);
          next_input_check = now + std::chrono::milliseconds(100);
          net.set_connections(guard->stats(), peers.size());
        }
        if (now >= next_expiry) {
          forget_idle_peers(now);
          next_expiry = now + std::chrono::seconds(1);
        }
      }
    } catch (...) {
      engine_stop = true;
      engine_thread.join();
      throw;
    }
    engine_stop = true;
    engine_thread.join();  // the engine answers what waits (shutting_down) and closes every session
    send_replies();
    const auto& cs = guard->stats();
    spdlog::info("shutting down: {} replies dropped to full queues, {} connections dropped for not reading, {} over "
                 "the handshake cap, {} for pending input",
                 net.replies_dropped.load(), net.peers_dropped.load(), cs.refused_over_handshake_cap,
                 cs.dropped_pending_input);
  }
};

Server::Server(const CloudConfig& config) : impl_(std::make_unique<Impl>(config)) {}
Server::~Server() = default;
void Server::run(const std::atomic<bool>& stop) { impl_->run(stop); }
std::string Server::endpoint() const { return impl_->endpoint(); }

}  // namespace duet::cloud
