#include "protocol/zap.hpp"

#include <array>
#include <cstring>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <zmq_addon.hpp>

namespace duet::protocol {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
using RawKey = std::array<std::uint8_t, 32>;

std::map<RawKey, std::string> index_keys(const std::vector<AuthorizedKey>& allowed) {
  if (allowed.empty())
    throw KeyError("ZAP allow-list is empty; refusing to start a server every key could use");
  std::map<RawKey, std::string> out;
  for (const auto& k : allowed) {
    RawKey raw{};
    if (!is_valid_z85_key(k.public_z85) || !zmq_z85_decode(raw.data(), k.public_z85.c_str()))
      throw KeyError("allow-list key \"" + k.name + "\" (" + k.file.string() +
                     ") is not a 40-character Z85 CURVE public key");
    out.emplace(raw, k.name);
  }
  return out;
}

std::string z85(const zmq::message_t& raw) {
  if (raw.size() != 32) return {};
  char buf[41] = {};
  zmq_z85_encode(buf, static_cast<const uint8_t*>(raw.data()), 32);
  return buf;
}

}  // namespace

struct ZapAuthenticator::Impl {
  Impl(zmq::context_t& ctx, Options opts)
      : options(std::move(opts)),
        zap(ctx, zmq::socket_type::rep),
        ctl_recv(ctx, zmq::socket_type::pair),
        ctl_send(ctx, zmq::socket_type::pair) {}

  Options options;
  zmq::socket_t zap;       // REP, used only by the thread after construction
  zmq::socket_t ctl_recv;  // PAIR, thread side
  zmq::socket_t ctl_send;  // PAIR, owner side: one message = stop
  std::mutex mu;
  std::map<RawKey, std::string> allowed;  // guarded by mu
  std::atomic<std::uint64_t> n_accepted{0};
  std::atomic<std::uint64_t> n_refused{0};
  std::thread thread;

  void run();
  ZapDecision decide(const std::vector<zmq::message_t>& req);
};

ZapDecision ZapAuthenticator::Impl::decide(const std::vector<zmq::message_t>& req) {
  ZapDecision d;
  // RFC 27 request: version, request_id, domain, address, identity, mechanism, credentials...
  if (req.size() < 6 || req[0].to_string_view() != "1.0") {
    d.reason = "malformed ZAP request";
    return d;
  }
  d.address = req[3].to_string();
  d.mechanism = req[5].to_string();
  if (req[2].to_string_view() != options.domain) {
    d.reason = "unknown ZAP domain";
    return d;
  }
  if (d.mechanism != "CURVE") {
    d.reason = "only CURVE clients are accepted";
    return d;
  }
  if (req.size() != 7 || req[6].size() != 32) {
    d.reason = "malformed CURVE credentials";
    return d;
  }
  d.public_z85 = z85(req[6]);
  RawKey raw{};
  std::memcpy(raw.data(), req[6].data(), 32);
  std::lock_guard<std::mutex> lock(mu);
  auto it = allowed.find(raw);
  if (it == allowed.end()) {
    d.reason = "client key is not in the allow-list";
    return d;
  }
  d.allowed = true;
  d.user = it->second;
  d.reason = "OK";
  return d;
}

void ZapAuthenticator::Impl::run() {
  try {
    for (;;) {
      zmq::pollitem_t items[] = {{zap.handle(), 0, ZMQ_POLLIN, 0},
                                 {ctl_recv.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
      if (items[1].revents & ZMQ_POLLIN) return;
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> req;
      if (!zmq::recv_multipart(zap, std::back_inserter(req))) continue;
      const ZapDecision d = decide(req);
      (d.allowed ? n_accepted : n_refused).fetch_add(1);
      const char* status = d.allowed ? "200" : (d.reason == "malformed ZAP request" ? "500" : "400");
      std::array<zmq::message_t, 6> reply = {
          zmq::message_t(std::string_view("1.0")),
          req.size() > 1 ? zmq::message_t(req[1].data(), req[1].size()) : zmq::message_t(),
          zmq::message_t(std::string_view(status)),
          zmq::message_t(std::string_view(d.reason)),
          zmq::message_t(std::string_view(d.user)),
          zmq::message_t()};
      zmq::send_multipart(zap, reply);
      if (options.on_decision) {
        try {
          options.on_decision(d);
        } catch (...) {
          // A logging callback must not take authentication down.
        }
      }
    }
  } catch (const zmq::error_t&) {
    // ETERM: the context is shutting down; nothing left to authenticate.
  }
}

ZapAuthenticator::ZapAuthenticator(zmq::context_t& ctx, const std::vector<AuthorizedKey>& allowed)
    : ZapAuthenticator(ctx, allowed, Options{}) {}

ZapAuthenticator::ZapAuthenticator(zmq::context_t& ctx, const std::vector<AuthorizedKey>& allowed,
                                   Options options)
    : impl_(std::make_unique<Impl>(ctx, std::move(options))) {
  if (impl_->options.domain.empty())
    throw KeyError("ZAP domain is empty; an empty ZMQ_ZAP_DOMAIN can switch ZAP off");
  impl_->allowed = index_keys(allowed);
  for (auto* s : {&impl_->zap, &impl_->ctl_recv, &impl_->ctl_send}) s->set(zmq::sockopt::linger, 0);
  try {
    impl_->zap.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(std::string("cannot bind the ZAP handler to ") + kZapEndpoint +
                             ": " + e.what() +
                             " (this ZeroMQ context already has a ZAP handler?)");
  }
  const std::string ctl = "inproc://duet.zap.control." +
                          std::to_string(reinterpret_cast<std::uintptr_t>(impl_.get()));
  impl_->ctl_recv.bind(ctl);
  impl_->ctl_send.connect(ctl);
  // Thread creation is a full barrier: the sockets may move to the new thread.
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

ZapAuthenticator::~ZapAuthenticator() {
  try {
    impl_->ctl_send.send(zmq::message_t(), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // ETERM: the thread has seen it too and is leaving.
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

void ZapAuthenticator::set_allowed(const std::vector<AuthorizedKey>& allowed) {
  auto index = index_keys(allowed);
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->allowed = std::move(index);
}

const std::string& ZapAuthenticator::domain() const noexcept { return impl_->options.domain; }
std::uint64_t ZapAuthenticator::accepted() const noexcept { return impl_->n_accepted.load(); }
std::uint64_t ZapAuthenticator::refused() const noexcept { return impl_->n_refused.load(); }

}  // namespace duet::protocol
