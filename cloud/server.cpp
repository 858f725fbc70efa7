#include "cloud/server.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <map>
#include <optional>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "cloud/pipeline.hpp"
#include "cloud/session_table.hpp"
#include "common/checkpoint.hpp"
#include "common/dtype.hpp"
#include "common/wire/tensor_frames.hpp"
#include "protocol/curve.hpp"
#include "protocol/messages.hpp"
#include "protocol/recv.hpp"
#include "protocol/validate.hpp"

namespace duet::cloud {

namespace p = protocol;
using p::ErrorCode;
using p::ProtocolError;

namespace {

// A connection as the ROUTER sees it: its routing id and what its hello settled.
struct Peer {
  bool greeted = false;
  p::WireDtype wire_dtype = p::WireDtype::f32;
  Clock::time_point last_seen;
};

std::string hex_id(const std::string& routing_id) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (unsigned char c : routing_id) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

}  // namespace

struct Server::Impl {
  CloudConfig cfg;
  Checkpoint ckpt;
  std::string fingerprint;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<SessionTable> sessions;
  p::ServerLimits limits;
  uint32_t allowed_dtypes = 0;
  zmq::context_t ctx;
  std::unique_ptr<p::ZapAuthenticator> zap;  // declared after ctx: destroyed first
  std::unique_ptr<zmq::socket_t> router;
  std::map<std::string, Peer> peers;
  uint64_t served = 0, refused = 0;

  explicit Impl(const CloudConfig& c) : cfg(c), ckpt(c.model_path) {
    cfg.validate();
    const auto& mc = ckpt.config();
    fingerprint = model_fingerprint(ckpt);
    for (const auto& d : cfg.wire_dtypes) allowed_dtypes |= p::dtype_bit(p::parse_dtype_or_throw(d));

    SessionLimits sl;
    sl.max_sessions = cfg.max_sessions;
    sl.max_positions = static_cast<uint32_t>(std::min<int64_t>(cfg.max_positions_per_session, mc.max_positions));
    sl.kv_budget_bytes = static_cast<int64_t>(cfg.kv_memory_mb) << 20;
    sl.idle_timeout = std::chrono::milliseconds(int64_t(cfg.idle_timeout_s) * 1000);

    auto plan = make_stage_plan(cfg.plan, cfg.devices, mc.num_layers);
    const auto t0 = Clock::now();
    // KV blocks: the budget, but no more than every session at its longest can use (+ scratch)
    KvSizing kv{sl.kv_budget_bytes, int64_t(sl.max_sessions) * KvBlockAllocator::blocks_for(sl.max_positions) + 1};
    pipeline = std::make_unique<Pipeline>(ckpt, plan, parse_dtype(cfg.dtype), kv);
    const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();
    sessions = std::make_unique<SessionTable>(*pipeline, sl);

    limits.max_sessions = sl.max_sessions;
    limits.max_positions_per_session = sl.max_positions;
    limits.max_positions_per_forward = std::min(cfg.max_positions_per_forward, sl.max_positions);
    limits.max_message_bytes = cfg.max_message_mb << 20;
    limits.idle_timeout_ms = cfg.idle_timeout_s * 1000;

    spdlog::info("model {} ({}, {} layers, hidden {}), {} , blocks loaded in {:.2f} s", cfg.model_path, mc.model_type,
                 mc.num_layers, mc.hidden_size, cfg.dtype, load_s);
    spdlog::info("fingerprint {}", fingerprint);
    std::string table = pipeline->describe();
    std::printf("stage plan (%s):\n%s", cfg.plan.c_str(), table.c_str());
    std::fflush(stdout);

    router = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
    router->set(zmq::sockopt::linger, 0);
    router->set(zmq::sockopt::router_mandatory, 1);  // a reply to a vanished peer fails loudly
    if (cfg.insecure) {
      spdlog::warn("--insecure: CURVE is OFF. Activations and tokens cross the network in the clear and any "
                   "client can connect. Use only on a trusted network for tests.");
    } else {
      auto keys = p::load_keypair(cfg.secret_key);
      auto allowed = p::load_authorized_keys(cfg.authorized_keys);
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
  }

  std::string endpoint() const { return router->get(zmq::sockopt::last_endpoint); }

  void send(const std::string& peer, uint64_t request_id, const p::MessageBody& body,
            std::vector<zmq::message_t> tensors = {}) {
    std::vector<zmq::message_t> frames;
    frames.emplace_back(peer.data(), peer.size());
    p::append_message(frames, request_id, body, std::move(tensors));
    try {
      zmq::send_multipart(*router, frames);
    } catch (const zmq::error_t& e) {
      spdlog::warn("reply to connection {} not sent: {}", hex_id(peer), e.what());
    }
  }

  void send_error(const std::string& peer, uint64_t request_id, ErrorCode code, const std::string& msg) {
    ++refused;
    p::Error e;
    e.code = code;
    e.message = msg.size() > p::kMaxErrorMessageChars ? msg.substr(0, p::kMaxErrorMessageChars) : msg;
    send(peer, request_id, e);
  }

  Peer& greeted_peer(const std::string& peer) {
    auto it = peers.find(peer);
    if (it == peers.end() || !it->second.greeted)
      throw ProtocolError(ErrorCode::handshake_required,
                          "send hello first: this connection has not shaken hands, or was idle longer than " +
                              std::to_string(cfg.idle_timeout_s) + " s and was forgotten with its sessions");
    return it->second;
  }

  void on_hello(const std::string& peer, uint64_t rid, const p::Hello& m) {
    p::check_hello(m, fingerprint, allowed_dtypes);
    auto& pr = peers[peer];
    pr.greeted = true;
    pr.wire_dtype = m.wire_dtype;
    pr.last_seen = Clock::now();
    p::HelloReply r;
    r.model_fingerprint = fingerprint;
    r.hidden_size = static_cast<uint32_t>(ckpt.config().hidden_size);
    r.wire_dtype = m.wire_dtype;
    r.limits = limits;
    r.server_name = cfg.name;
    spdlog::info("hello from '{}' (connection {}), wire {}", p::printable(m.client_name), hex_id(peer),
                 p::dtype_name(m.wire_dtype));
    send(peer, rid, r);
  }

  void on_open(const std::string& peer, uint64_t rid, const p::OpenSession& m) {
    greeted_peer(peer);
    Session& s = sessions->open(peer, m.max_positions);
    spdlog::info("session {} opened for connection {} ({} positions; {} open)", s.id, hex_id(peer), s.max_positions,
                 sessions->size());
    send(peer, rid, p::SessionOpened{s.id, s.max_positions});
  }

  void on_forward(const std::string& peer, uint64_t rid, const p::Forward& m, const p::FrameView& frame,
                  Clock::time_point received) {
    Peer& pr = greeted_peer(peer);
    p::ForwardContract contract{static_cast<uint32_t>(ckpt.config().hidden_size), pr.wire_dtype,
                                limits.max_positions_per_forward};
    p::validate_forward(m, contract);
    Session& s = sessions->get(peer, m.session_id);
    sessions->reserve(s, m.start_pos, m.n_positions);

    auto x = frame_to_tensor(frame, m.hidden, pipeline->first_device(), pipeline->dtype());
    StepBatch batch;
    batch.rows.push_back({&s.table, m.start_pos, m.n_positions});
    torch::Tensor y;
    try {
      y = pipeline->forward(batch, x);  // [n, H]
    } catch (...) {
      sessions->rewind(s, m.start_pos);
      throw;
    }
    sessions->commit(s, m.start_pos, m.n_positions);
    if (m.output == p::OutputMode::last) y = y.narrow(0, y.size(0) - 1, 1);

    p::Result r;
    r.session_id = s.id;
    r.n_positions_returned = static_cast<uint32_t>(y.size(0));
    r.start_pos = m.start_pos + m.n_positions - r.n_positions_returned;
    auto out = tensor_to_frame(y, pr.wire_dtype, r.hidden);  // copies to host: the compute is done
    r.cloud_compute_us = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - received).count());
    std::vector<zmq::message_t> t;
    t.push_back(std::move(out));
    send(peer, rid, r, std::move(t));
    ++served;
  }

  void on_close(const std::string& peer, uint64_t rid, const p::CloseSession& m) {
    greeted_peer(peer);
    if (!sessions->close(peer, m.session_id))
      throw ProtocolError(ErrorCode::unknown_session,
                          "session " + std::to_string(m.session_id) + " is not open on this connection");
    spdlog::info("session {} closed ({} open)", m.session_id, sessions->size());
    send(peer, rid, p::SessionClosed{m.session_id});
  }

  void handle(std::vector<zmq::message_t>& frames) {
    const auto received = Clock::now();
    if (frames.empty()) return;
    const std::string peer(static_cast<const char*>(frames[0].data()), frames[0].size());
    uint64_t rid = 0;
    try {
      p::DecodeLimits dl;
      dl.max_message_bytes = limits.max_message_bytes;
      auto msg = p::decode(frames.data() + 1, frames.size() - 1, dl);
      rid = msg.request_id;
      if (auto it = peers.find(peer); it != peers.end()) it->second.last_seen = received;
      switch (msg.kind) {
        case p::MessageKind::hello: on_hello(peer, rid, msg.as<p::Hello>()); break;
        case p::MessageKind::open_session: on_open(peer, rid, msg.as<p::OpenSession>()); break;
        case p::MessageKind::forward: on_forward(peer, rid, msg.as<p::Forward>(), msg.tensors.at(0), received); break;
        case p::MessageKind::close_session: on_close(peer, rid, msg.as<p::CloseSession>()); break;
        default:
          throw ProtocolError(ErrorCode::bad_message,
                              "a cloud daemon does not accept '" + std::string(p::to_string(msg.kind)) + "' messages");
      }
    } catch (const ProtocolError& e) {
      spdlog::warn("connection {}: {} ({})", hex_id(peer), e.what(), p::to_string(e.code()));
      send_error(peer, rid, e.code(), e.what());
    } catch (const std::exception& e) {
      // a failure inside the model (out of memory, a bug): this request fails, the daemon goes on
      spdlog::error("connection {}: request {} failed: {}", hex_id(peer), rid, e.what());
      send_error(peer, rid, ErrorCode::internal, std::string("the daemon failed to run this request: ") + e.what());
    }
  }

  void expire(Clock::time_point now) {
    for (uint64_t id : sessions->expire(now)) spdlog::info("session {} expired after {} s idle", id, cfg.idle_timeout_s);
    const auto idle = std::chrono::seconds(cfg.idle_timeout_s);
    for (auto it = peers.begin(); it != peers.end();) {
      if (now - it->second.last_seen > idle) it = peers.erase(it);
      else ++it;
    }
  }

  void run(const std::atomic<bool>& stop) {
    torch::NoGradGuard no_grad;
    auto next_expiry = Clock::now() + std::chrono::seconds(1);
    while (!stop.load()) {
      zmq::pollitem_t item{static_cast<void*>(*router), 0, ZMQ_POLLIN, 0};
      try {
        zmq::poll(&item, 1, std::chrono::milliseconds(100));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;  // a signal: the loop condition decides
        throw;
      }
      // drain what is ready; a batching scheduler would gather the forwards of this round here
      for (int i = 0; i < 64 && (item.revents & ZMQ_POLLIN); ++i) {
        std::vector<zmq::message_t> frames;
        // routing id + at most max_frames + 1: an over-long message is refused, not truncated
        auto got = p::recv_bounded(*router, frames, 1 + p::kMaxFramesPerMessage + 1, zmq::recv_flags::dontwait);
        if (!got) break;
        handle(frames);
      }
      const auto now = Clock::now();
      if (now >= next_expiry) {
        expire(now);
        next_expiry = now + std::chrono::seconds(1);
      }
    }
    spdlog::info("shutting down: {} forwards served, {} requests refused, {} sessions dropped", served, refused,
                 sessions->size());
  }
};

Server::Server(const CloudConfig& config) : impl_(std::make_unique<Impl>(config)) {}
Server::~Server() = default;
void Server::run(const std::atomic<bool>& stop) { impl_->run(stop); }
std::string Server::endpoint() const { return impl_->endpoint(); }

}  // namespace duet::cloud
