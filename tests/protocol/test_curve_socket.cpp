// A real CURVE ROUTER/DEALER pair on tcp://127.0.0.1 behind ZapAuthenticator: an allow-listed
// client talks, an unlisted one and one pinning the wrong server key get nothing, and the
// socket helpers refuse misuse. Each case stays well under 5 s (short handshake and poll times).
#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include <zmq_addon.hpp>

#include "protocol/curve.hpp"
#include "protocol/messages.hpp"
#include "temp_dir.hpp"
#include "test_helpers.hpp"

using namespace duet::protocol;
using namespace duet::protocol::test;
using namespace std::chrono_literals;

namespace {

struct Server {
  zmq::context_t ctx;
  CurveKeyPair keys = generate_keypair();
  CurveKeyPair alice = generate_keypair();
  CurveKeyPair mallory = generate_keypair();
  std::vector<ZapDecision> decisions;  // written on the ZAP thread, read after it settles
  std::mutex mu;
  std::unique_ptr<ZapAuthenticator> auth;
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string endpoint;

  Server() {
    TempDir allow;
    write_keypair(allow.path(), "alice", alice);
    std::filesystem::remove(allow / "alice.key_secret");
    ZapAuthenticator::Options opt;
    opt.on_decision = [this](const ZapDecision& d) {
      std::lock_guard<std::mutex> lock(mu);
      decisions.push_back(d);
    };
    auth = std::make_unique<ZapAuthenticator>(ctx, load_authorized_keys(allow.path()), opt);
    router.set(zmq::sockopt::linger, 0);
    configure_curve_server(router, keys, *auth);
    set_max_message_size(router, 1 << 20);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
  }
  ~Server() {
    router.close();
    auth.reset();  // before ctx: zmq_ctx_term waits for the handler's sockets
  }

  zmq::socket_t client(const CurveKeyPair& own, const std::string& server_public) {
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::handshake_ivl, 1000);
    s.set(zmq::sockopt::rcvtimeo, 1500);
    configure_curve_client(s, own, server_public);
    s.connect(endpoint);
    return s;
  }

  // Frames of the next message on the router, or none within `wait`.
  std::vector<zmq::message_t> receive(std::chrono::milliseconds wait) {
    std::vector<zmq::message_t> frames;
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, wait) > 0 && !zmq::recv_multipart(router, std::back_inserter(frames)))
      frames.clear();
    return frames;
  }
};

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

}  // namespace

TEST_CASE("allow-listed client exchanges messages over CURVE") {
  Server srv;
  auto alice = srv.client(srv.alice, srv.keys.public_z85);
  zmq::send_multipart(alice, encode(1, sample_hello()));

  auto frames = srv.receive(3000ms);
  REQUIRE(frames.size() == 2);  // identity + header
  CHECK(std::string(frames[1].gets("User-Id")) == "alice");  // the ZAP user id reaches the app
  auto d = decode(frames.data() + 1, frames.size() - 1);
  CHECK(d.as<Hello>() == sample_hello());

  // reply through the ROUTER, with a tensor frame
  std::vector<zmq::message_t> reply;
  reply.push_back(std::move(frames[0]));
  std::vector<std::uint8_t> row(8, 0x33);
  std::vector<zmq::message_t> tensors;
  tensors.push_back(tensor_frame_copy(row.data(), row.size()));
  append_message(reply, 1, sample_result(), std::move(tensors));
  zmq::send_multipart(srv.router, reply);

  std::vector<zmq::message_t> back;
  REQUIRE(zmq::recv_multipart(alice, std::back_inserter(back)));
  auto r = decode(back);
  CHECK(r.as<Result>() == sample_result());
  CHECK(std::to_integer<int>(r.tensors.at(0).data[7]) == 0x33);
  CHECK(srv.auth->accepted() >= 1);
  CHECK(srv.auth->refused() == 0);
}

TEST_CASE("unlisted client key is refused by ZAP and delivers nothing") {
  Server srv;
  auto mallory = srv.client(srv.mallory, srv.keys.public_z85);
  (void)mallory.send(encode(1, sample_hello())[0], zmq::send_flags::dontwait);
  CHECK(srv.receive(700ms).empty());
  CHECK(wait_for([&] { return srv.auth->refused() >= 1; }, 2000ms));
  CHECK(srv.auth->accepted() == 0);
  std::lock_guard<std::mutex> lock(srv.mu);
  REQUIRE_FALSE(srv.decisions.empty());
  CHECK_FALSE(srv.decisions[0].allowed);
  CHECK(srv.decisions[0].mechanism == "CURVE");
  CHECK(srv.decisions[0].public_z85 == srv.mallory.public_z85);
  CHECK(srv.decisions[0].reason.find("allow-list") != std::string::npos);
}

TEST_CASE("client pinning the wrong server key never gets through") {
  Server srv;
  const auto impostor = generate_keypair();
  auto alice = srv.client(srv.alice, impostor.public_z85);
  (void)alice.send(encode(1, sample_hello())[0], zmq::send_flags::dontwait);
  CHECK(srv.receive(1000ms).empty());
  CHECK(srv.auth->accepted() == 0);  // the handshake fails before ZAP is even asked
}

TEST_CASE("allow-list changes take effect for new connections") {
  Server srv;
  srv.auth->set_allowed({AuthorizedKey{"mallory", srv.mallory.public_z85, {}}});
  auto mallory = srv.client(srv.mallory, srv.keys.public_z85);
  zmq::send_multipart(mallory, encode(2, CloseSession{9}));
  auto frames = srv.receive(3000ms);
  REQUIRE(frames.size() == 2);
  CHECK(decode(frames.data() + 1, 1).as<CloseSession>().session_id == 9);
  CHECK_THROWS_AS(srv.auth->set_allowed({}), KeyError);
  CHECK_THROWS_AS(srv.auth->set_allowed({AuthorizedKey{"bad", "not-a-key", {}}}), KeyError);
}

TEST_CASE("ZapAuthenticator and socket helpers refuse misuse") {
  zmq::context_t ctx;
  const auto keys = generate_keypair();
  CHECK_THROWS_AS(ZapAuthenticator(ctx, {}), KeyError);  // empty allow-list: never open
  {
    TempDir empty;
    CHECK_THROWS_AS(ZapAuthenticator(ctx, load_authorized_keys(empty.path())), KeyError);
  }
  ZapAuthenticator::Options no_domain;
  no_domain.domain = "";
  CHECK_THROWS_AS(ZapAuthenticator(ctx, {AuthorizedKey{"a", keys.public_z85, {}}}, no_domain),
                  KeyError);
  ZapAuthenticator auth(ctx, {AuthorizedKey{"a", keys.public_z85, {}}});
  CHECK(auth.domain() == "duet");
  // one ZAP handler per context
  CHECK_THROWS_AS(ZapAuthenticator(ctx, {AuthorizedKey{"a", keys.public_z85, {}}}),
                  std::runtime_error);

  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.set(zmq::sockopt::linger, 0);
  CHECK_THROWS_AS(configure_curve_server(s, CurveKeyPair{"x", "y"}, auth), KeyError);
  s.bind("tcp://127.0.0.1:*");
  CHECK_THROWS_AS(configure_curve_server(s, keys, auth), std::logic_error);  // after bind

  zmq::socket_t c(ctx, zmq::socket_type::dealer);
  c.set(zmq::sockopt::linger, 0);
  CHECK_THROWS_AS(configure_curve_client(c, keys, "short"), KeyError);
  set_max_message_size(c, 1000);
  CHECK(c.get(zmq::sockopt::maxmsgsize) == 1000 + static_cast<std::int64_t>(kCurveFrameOverhead));
  set_max_message_size(c, 1000, /*curve=*/false);
  CHECK(c.get(zmq::sockopt::maxmsgsize) == 1000);
  CHECK_THROWS_AS(set_max_message_size(c, 0), std::invalid_argument);
  CHECK_THROWS_AS(set_max_message_size(c, UINT64_MAX), std::invalid_argument);
}
