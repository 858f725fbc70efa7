// Raw protocol abuse over a real CURVE DEALER socket with an authorized key: every bad request
// gets an Error with the right code and a sentence, and after each the daemon still serves a
// fresh session correctly. Then the limits: message size, sessions, KV budget, idle expiry (and
// the edge's resume across it).
#include "../common/torch_doctest.hpp"

#include <cstring>
#include <functional>
#include <thread>

#include "common/checkpoint.hpp"
#include "common/wire/tensor_frames.hpp"
#include "edge/client/cloud_connection.hpp"
#include "edge/client/edge_client.hpp"
#include "edge/client/remote_backbone.hpp"
#include "edge_helpers.hpp"

using namespace duet;
using namespace duet::itest;
namespace p = duet::protocol;
using p::ErrorCode;

namespace {

RawClient authorized(const DaemonProcess& d) {
  return RawClient(d.endpoint(), keys().edge, keys().server.public_z85);
}

std::vector<zmq::message_t> raw_frames(std::initializer_list<std::string> parts) {
  std::vector<zmq::message_t> f;
  for (const auto& s : parts) f.emplace_back(s.data(), s.size());
  return f;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("bad requests get the right error code and the daemon goes on serving") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--max-forward", "8", "--wire-dtypes", "fp32,bf16"}));
  INFO(d.log());
  const std::string fp = fingerprint_of(model);
  RawClient c = authorized(d);
  const uint32_t H = c.hello(fp).hidden_size;
  REQUIRE(H == 32);
  uint64_t s = c.open_session();
  c.forward(s, 0, 3, H);  // the session holds 3 positions

  struct Case {
    const char* name;
    ErrorCode code;
    std::function<std::optional<p::DecodedMessage>()> run;
  };
  const std::vector<Case> cases = {
      {"malformed header bytes", ErrorCode::bad_message,
       [&] { return c.request(raw_frames({std::string("\x95\xa4" "duex\x01\x05\xc1", 7)})); }},
      {"a header that is not msgpack at all", ErrorCode::bad_message,
       [&] { return c.request(raw_frames({"GET / HTTP/1.1\r\n\r\n"})); }},
      {"a kind only the daemon sends (hello_reply)", ErrorCode::bad_message,
       [&] {
         p::HelloReply r;
         r.model_fingerprint = fp;
         r.hidden_size = H;
         return c.request(r);
       }},
      {"more frames than any message has", ErrorCode::too_large,
       [&] {
         auto f = c.forward_frames(s, 3, 1, H);
         for (int i = 0; i < 6; ++i) f.emplace_back("x", 1);
         return c.request(std::move(f));
       }},
      {"wrong dtype (bf16 allowed but fp32 negotiated)", ErrorCode::bad_dtype,
       [&] { return c.request(c.forward_frames(s, 3, 1, H, p::WireDtype::bf16)); }},
      {"wrong shape (hidden + 1)", ErrorCode::bad_shape, [&] { return c.request(c.forward_frames(s, 3, 1, H + 1)); }},
      {"tensor frame shorter than its shape", ErrorCode::frame_size_mismatch,
       [&] {
         p::Forward f;
         f.session_id = s;
         f.start_pos = 3;
         f.n_positions = 2;
         f.hidden.shape = {2, H};
         std::vector<zmq::message_t> frames;
         const std::string hdr = p::encode_header(c.next_id(), f);
         frames.emplace_back(hdr.data(), hdr.size());
         std::vector<float> one_row(H, 0.5f);
         frames.push_back(p::tensor_frame_copy(one_row.data(), one_row.size() * sizeof(float)));
         return c.request(std::move(frames));
       }},
      {"position gap (start 5 on a session of 3)", ErrorCode::position_gap,
       [&] { return c.request(c.forward_frames(s, 5, 1, H)); }},
      {"unknown session id", ErrorCode::unknown_session,
       [&] { return c.request(c.forward_frames(s ^ 0x5a5a5a5a5a5aULL, 3, 1, H)); }},
      {"closing an unknown session", ErrorCode::unknown_session,
       [&] { return c.request(p::CloseSession{s + 1}); }},
      {"another client key's session id (sessions belong to keys, not connections)", ErrorCode::unknown_session,
       [&] {
         RawClient other(d.endpoint(), keys().studio, keys().server.public_z85);
         other.hello(fp);
         return other.request(other.forward_frames(s, 3, 1, H));
       }},
      {"forward before hello", ErrorCode::handshake_required,
       [&] {
         RawClient fresh = authorized(d);
         return fresh.request(fresh.forward_frames(s, 3, 1, H));
       }},
      {"open_session before hello", ErrorCode::handshake_required,
       [&] {
         RawClient fresh = authorized(d);
         return fresh.request(p::OpenSession{0});
       }},
      {"more positions than --max-forward", ErrorCode::position_limit,
       [&] { return c.request(c.forward_frames(s, 3, 9, H)); }},
      {"past the session's granted positions", ErrorCode::position_limit,
       [&] {
         const uint64_t small = c.open_session(4);
         auto r = c.request(c.forward_frames(small, 0, 5, H));
         c.request(p::CloseSession{small});
         return r;
       }},
      {"hello for another model", ErrorCode::model_mismatch,
       [&] {
         RawClient other = authorized(d);
         p::Hello h;
         h.model_fingerprint = std::string(64, 'a');
         return other.request(h);
       }},
      {"hello with another protocol version", ErrorCode::unsupported_version,
       [&] {
         RawClient other = authorized(d);
         std::vector<zmq::message_t> f;
         // encode() refuses to write a foreign version: patch the header's version byte instead
         std::string hdr = p::encode_header(other.next_id(), p::Hello{p::kProtocolVersion, fp, {}, "x"});
         const auto at = hdr.find("duet") + 4;
         REQUIRE(static_cast<uint8_t>(hdr[at]) == p::kProtocolVersion);
         hdr[at] = 99;
         f.emplace_back(hdr.data(), hdr.size());
         return other.request(std::move(f));
       }},
      {"hello with a wire dtype the daemon does not serve", ErrorCode::bad_dtype,
       [&] {
         RawClient other = authorized(d);
         p::Hello h;
         h.model_fingerprint = fp;
         h.wire_dtype = p::WireDtype::f16;
         return other.request(h);
       }},
  };
  for (const auto& k : cases) {
    CAPTURE(std::string(k.name));
    auto reply = k.run();
    expect_error(reply, k.code);
    // the abuser's own session is intact, and a fresh edge gets correct tokens
    auto r = c.forward(s, 3, 1, H);
    CHECK(r.start_pos == 3);
    c.request(p::CloseSession{s});  // keep the session at 3 positions for the next case
    s = c.open_session();
    c.forward(s, 0, 3, H);
    check_serves(d.endpoint(), model);
  }
  CHECK(d.stop() == 0);
  CHECK(contains(d.log(), "stopped cleanly"));
}

TEST_CASE("a frame over --max-message-mb: libzmq drops that connection, a fresh one still works") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--max-message-mb", "1"}));
  INFO(d.log());
  const std::string fp = fingerprint_of(model);
  RawClient c = authorized(d);
  const auto hello = c.hello(fp);
  CHECK(hello.limits.max_message_bytes == (1u << 20));
  const uint64_t s = c.open_session();
  // 10000 rows * 32 * 4 bytes = 1.28 MB in one frame (the forward limit is not reached: the
  // transport drops the connection before anything is decoded)
  c.send(c.forward_frames(s, 0, 10000, hello.hidden_size));
  CHECK_FALSE(c.receive(1500ms).has_value());

  RawClient fresh = authorized(d);
  fresh.hello(fp);
  const uint64_t s2 = fresh.open_session();
  CHECK(fresh.forward(s2, 0, 4, hello.hidden_size).start_pos == 3);
  check_serves(d.endpoint(), model);
  // the dropped connection comes back as a new peer: it must shake hands again
  expect_error(c.request(c.forward_frames(s, 0, 1, hello.hidden_size)), ErrorCode::handshake_required);
  CHECK(d.stop() == 0);
}

TEST_CASE("--max-sessions 1: a second session is refused with session_limit, then served once freed") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--max-sessions", "1"}));
  INFO(d.log());
  RawClient c = authorized(d);
  c.hello(fingerprint_of(model));
  const uint64_t s = c.open_session();
  expect_error(c.request(p::OpenSession{0}), ErrorCode::session_limit);
  // an edge meets the same limit as a CloudError carrying the code
  try {
    split_tokens(split_config(model, d.endpoint()), kPrompt, fixed_options(4));
    FAIL("a second session was opened past --max-sessions 1");
  } catch (const edge::CloudError& e) {
    CHECK(e.failure() == edge::CloudFailure::daemon_error);
    CHECK(e.protocol_code() == ErrorCode::session_limit);
  }
  auto closed = c.request(p::CloseSession{s});
  REQUIRE(closed.kind == p::MessageKind::session_closed);
  check_serves(d.endpoint(), model);
  CHECK(d.stop() == 0);
}

TEST_CASE("KV budget (--kv-memory-mb 2 on abc-folk): refused opens and growth get kv_memory_limit") {
  // abc-folk: 6 layers * (K+V) * 4 KV heads * 32 * 4 bytes = 6 KiB per position; KV blocks of 16
  // positions (96 KiB): 2 MiB hold 21 blocks, one of them scratch, so 320 positions in all. A
  // session takes one block at open and more as it grows.
  const std::string model = abc_model();
  // one key may take the whole pool here (the fair default would stop it at half: test_isolation)
  DaemonProcess d(secure_args(model, {"--kv-memory-mb", "2", "--key-kv-share", "1"}));
  INFO(d.log());
  RawClient c = authorized(d);
  const uint32_t H = c.hello(fingerprint_of(model)).hidden_size;
  const uint64_t s = c.open_session();
  c.forward(s, 0, 200, H);
  c.forward(s, 200, 120, H);  // the whole pool
  auto e = expect_error(c.request(p::OpenSession{0}), ErrorCode::kv_memory_limit);
  CHECK(contains(e.message, "KV pool"));
  expect_error(c.request(c.forward_frames(s, 320, 1, H)), ErrorCode::kv_memory_limit);
  // the refused growth left the session as it was
  CHECK(c.forward(s, 300, 20, H).start_pos == 319);
  REQUIRE(c.request(p::CloseSession{s}).kind == p::MessageKind::session_closed);
  check_serves(d.endpoint(), model);
  CHECK(d.stop() == 0);
}

TEST_CASE("idle expiry (--idle-timeout 1): the session is gone, and the edge resumes with identical tokens") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--idle-timeout", "1", "--devices", "cpu,cpu"}));
  INFO(d.log());
  const std::string fp = fingerprint_of(model);

  SUBCASE("a session unused for > 2 s answers unknown_session (the connection kept alive)") {
    RawClient c = authorized(d);
    const uint32_t H = c.hello(fp).hidden_size;
    const uint64_t s = c.open_session();
    c.forward(s, 0, 2, H);
    for (int i = 0; i < 10; ++i) {  // 2.5 s of other traffic on the connection, none for the session
      std::this_thread::sleep_for(250ms);
      c.hello(fp);
    }
    auto e = expect_error(c.request(c.forward_frames(s, 2, 1, H)), ErrorCode::unknown_session);
    CHECK(contains(e.message, "idle"));
    CHECK(contains(d.log(), "expired"));
    // an idle connection is forgotten too, and told why
    std::this_thread::sleep_for(2500ms);
    auto h = expect_error(c.request(p::OpenSession{0}), ErrorCode::handshake_required);
    CHECK(contains(h.message, "idle"));
  }
  SUBCASE("RemoteBackbone reopens, replays the prefix and goes on: tokens equal the reference") {
    for (const auto& opts : {fixed_options(12), fixed_options(12, sampled(99))}) {
      const auto want = local_tokens(model, kPrompt, opts);
      edge::EdgeClient client(split_config(model, d.endpoint()), false);
      int step = 0;
      auto res = client.generate(kPrompt, opts, [&](int32_t) {
        if (++step == 5) std::this_thread::sleep_for(2500ms);  // the session expires here
      });
      CHECK(client.resumes() >= 1);
      CHECK(res.tokens == want);
    }
  }
  SUBCASE("a session expired on a connection kept busy by another: unknown_session, reopen, replay") {
    Checkpoint ck(model);
    auto pieces = EdgePieces::load(ck, LoadOptions{});
    edge::CloudConnection conn(edge::connection_options(split_config(model, d.endpoint())), model_fingerprint(ck));
    edge::RemoteBackbone idle(conn), busy(conn);
    GreedyStepper a(pieces, idle, kPrompt), b(pieces, busy, {1, 2, 3});
    for (int i = 0; i < 4; ++i) a.step();
    for (int i = 0; i < 10; ++i) {  // 2.5 s: `busy` keeps the connection known, `idle` expires
      std::this_thread::sleep_for(250ms);
      b.step();
    }
    while (a.tokens.size() < 12) a.step();
    CHECK(idle.resumes() == 1);
    CHECK(busy.resumes() == 0);
    CHECK(a.tokens == local_tokens(model, kPrompt, fixed_options(12)));
    CHECK(b.tokens == local_tokens(model, {1, 2, 3}, fixed_options(10)));
  }
  check_serves(d.endpoint(), model);
  CHECK(d.stop() == 0);
}

TEST_CASE("the daemon restarts on the same address mid-generation: the edge resumes, no token lost") {
  const std::string model = fixture_model("qwen2_bias");
  std::optional<DaemonProcess> d;
  d.emplace(secure_args(model));
  const std::string endpoint = d->endpoint();
  auto args = secure_args(model, {"--devices", "cpu,cpu"});
  args[3] = endpoint;  // --listen: the same port
  const auto opts = fixed_options(16, sampled(3));
  edge::EdgeClient client(split_config(model, endpoint), false);
  int step = 0;
  auto res = client.generate(kPrompt, opts, [&](int32_t) {
    if (++step != 6) return;
    REQUIRE(d->stop() == 0);
    d.reset();
    d.emplace(args);
  });
  INFO(d->log());
  CHECK(d->endpoint() == endpoint);
  CHECK(client.resumes() == 1);
  CHECK(res.tokens == local_tokens(model, kPrompt, opts));
  CHECK(d->stop() == 0);
}

TEST_CASE("a prompt longer than --max-forward is sent in chunks the daemon accepts") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model, {"--max-forward", "4", "--devices", "cpu,cpu"}));
  INFO(d.log());
  const std::vector<int32_t> prompt = {1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41};  // 11 > 4
  const auto opts = fixed_options(8);
  std::vector<int32_t> got;
  try {
    got = split_tokens(split_config(model, d.endpoint()), prompt, opts);
  } catch (const std::exception& e) {
    FAIL("prefill over --max-forward failed: " << std::string(e.what()));
  }
  CHECK(got == local_tokens(model, prompt, opts));
  CHECK(d.stop() == 0);
}
