// ZAP handler (ZeroMQ RFC 27) that admits only CURVE clients whose public key is allow-listed.
//
// Why it must exist: with CURVE on and no handler bound to inproc://zeromq.zap.01, libzmq admits
// every client key. Construct the authenticator (it binds in its constructor) before binding
// the server socket, on the same zmq::context_t, and declare it after the context so that it
// is destroyed first (zmq_ctx_term waits for its sockets).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "protocol/curve_keys.hpp"

namespace duet::protocol {

// One admission decision, for the owner's log. Never contains secret material.
struct ZapDecision {
  bool allowed = false;
  std::string mechanism;   // "CURVE", "NULL", "PLAIN"
  std::string address;     // peer IP as libzmq reports it
  std::string public_z85;  // client key (empty when not CURVE)
  std::string user;        // allow-list name when allowed
  std::string reason;      // status text sent back
};

class ZapAuthenticator {
 public:
  struct Options {
    std::string domain = "duet";  // sockets must set the same ZMQ_ZAP_DOMAIN (non-empty)
    // Called on the authenticator's thread for every decision; keep it short, it must not throw.
    std::function<void(const ZapDecision&)> on_decision;
  };

  // Binds inproc://zeromq.zap.01 before returning. Throws KeyError for an empty allow-list or a
  // malformed key, std::runtime_error when the context already has a ZAP handler.
  ZapAuthenticator(zmq::context_t& ctx, const std::vector<AuthorizedKey>& allowed);
  ZapAuthenticator(zmq::context_t& ctx, const std::vector<AuthorizedKey>& allowed,
                   Options options);
  ~ZapAuthenticator();  // stops and joins the thread; closes its sockets

  ZapAuthenticator(const ZapAuthenticator&) = delete;
  ZapAuthenticator& operator=(const ZapAuthenticator&) = delete;

  // Replaces the allow-list (e.g. on SIGHUP). Same checks as the constructor; on a throw the old
  // list stays in force. Connections already admitted are not re-checked.
  void set_allowed(const std::vector<AuthorizedKey>& allowed);

  const std::string& domain() const noexcept;
  std::uint64_t accepted() const noexcept;
  std::uint64_t refused() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::protocol
