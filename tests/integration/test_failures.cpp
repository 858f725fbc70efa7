// What a user sees when something is wrong around the link: refused key, wrong pinned server key,
// no daemon, another model, insecure vs secure; and the daemon's own start and stop.
#include "../common/torch_doctest.hpp"

#include <signal.h>

#include "edge/client/edge_client.hpp"
#include "edge_helpers.hpp"

using namespace duet;
using namespace duet::itest;
using duet::edge::CloudError;
using duet::edge::CloudFailure;
namespace p = duet::protocol;

namespace {

const char* failure_name(CloudFailure f) {
  switch (f) {
    case CloudFailure::daemon_error: return "daemon_error";
    case CloudFailure::unreachable: return "unreachable";
    case CloudFailure::not_authorized: return "not_authorized";
    case CloudFailure::handshake: return "handshake";
    case CloudFailure::timeout: return "timeout";
  }
  return "?";
}

struct Outcome {
  bool threw = false;
  CloudFailure failure = CloudFailure::daemon_error;
  p::ErrorCode code = p::ErrorCode::ok;
  std::string message;
  double seconds = 0;
};

// Connects an EdgeClient (the hello runs in its constructor) and reports how it failed.
Outcome connect(const edge::EdgeConfig& cfg) {
  Outcome o;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    edge::EdgeClient client(cfg, false);
  } catch (const CloudError& e) {
    o.threw = true;
    o.failure = e.failure();
    o.code = e.protocol_code();
    o.message = e.what();
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("link failures are told apart, each with a clear message") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d(secure_args(model));
  INFO(d.log());

  SUBCASE("a client key that is not in the allow-list is refused: not_authorized") {
    auto cfg = split_config(model, d.endpoint(), 3000);
    cfg.client_key = keys().intruder_secret.string();
    auto o = connect(cfg);
    INFO(o.message);
    REQUIRE(o.threw);
    CHECK(std::string(failure_name(o.failure)) == "not_authorized");
    CHECK(o.code == p::ErrorCode::not_authorized);
    CHECK(contains(o.message, "authorized_keys"));
    CHECK(o.seconds < 3.0);  // the ZAP refusal is seen at once, not after the timeout
  }
  SUBCASE("pinning another server's key: handshake failure naming the pinned key") {
    auto cfg = split_config(model, d.endpoint(), 1500);
    cfg.server_key = keys().other_server_public.string();
    auto o = connect(cfg);
    INFO(o.message);
    REQUIRE(o.threw);
    CHECK(std::string(failure_name(o.failure)) == "handshake");
    CHECK(contains(o.message, "CURVE handshake"));
    CHECK(contains(o.message, cfg.server_key));
    CHECK(o.seconds < 6.0);
  }
  SUBCASE("a model the daemon does not serve is refused at the handshake: model_mismatch") {
    auto cfg = split_config(fixture_model("qwen2_bias"), d.endpoint(), 3000);
    auto o = connect(cfg);
    INFO(o.message);
    REQUIRE(o.threw);
    CHECK(std::string(failure_name(o.failure)) == "daemon_error");
    CHECK(o.code == p::ErrorCode::model_mismatch);
    CHECK(contains(o.message, "model_mismatch"));
  }
  SUBCASE("an insecure edge against a CURVE daemon fails clearly") {
    auto cfg = split_config(model, d.endpoint(), 1500);
    cfg.insecure = true;
    auto o = connect(cfg);
    INFO(o.message);
    REQUIRE(o.threw);
    CHECK(std::string(failure_name(o.failure)) == "handshake");
    CHECK(contains(o.message, "insecure"));
    CHECK(o.seconds < 6.0);
  }
  // after all that, the daemon serves a proper edge
  check_serves(d.endpoint(), model);
  CHECK(d.stop() == 0);
}

TEST_CASE("no daemon at the address: unreachable within the timeout") {
  auto cfg = split_config(fixture_model("llama_gqa"), "tcp://127.0.0.1:" + std::to_string(closed_port()), 1500);
  auto o = connect(cfg);
  INFO(o.message);
  REQUIRE(o.threw);
  CHECK(std::string(failure_name(o.failure)) == "unreachable");
  CHECK(contains(o.message, cfg.server));
  CHECK(o.seconds < 4.0);
}

TEST_CASE("a CURVE edge against an --insecure daemon fails clearly") {
  const std::string model = fixture_model("llama_gqa");
  DaemonProcess d({"--model", model, "--listen", "tcp://127.0.0.1:*", "--insecure"});
  INFO(d.log());
  auto o = connect(split_config(model, d.endpoint(), 1500));
  INFO(o.message);
  REQUIRE(o.threw);
  CHECK(std::string(failure_name(o.failure)) == "handshake");
  CHECK(contains(o.message, "insecure"));
  CHECK(d.stop() == 0);
}

TEST_CASE("daemon lifecycle: clean stop on SIGTERM/SIGINT, refuses an empty allow-list, warns when insecure") {
  const std::string model = fixture_model("llama_gqa");
  SUBCASE("SIGTERM while idle: exit 0 and 'stopped cleanly'") {
    DaemonProcess d(secure_args(model));
    CHECK(d.stop(SIGTERM) == 0);
    INFO(d.log());
    CHECK(contains(d.log(), "stopped cleanly"));
  }
  SUBCASE("SIGINT with a session open: exit 0, the session is dropped") {
    DaemonProcess d(secure_args(model));
    {
      edge::EdgeClient client(split_config(model, d.endpoint()), false);
      client.generate(kPrompt, fixed_options(4));
      CHECK(d.stop(SIGINT) == 0);  // the client's session is still open
    }
    INFO(d.log());
    CHECK(contains(d.log(), "stopped cleanly"));
    CHECK(contains(d.log(), "closing 1 sessions"));
  }
  SUBCASE("an empty authorized_keys folder stops the daemon before it listens") {
    const auto& k = keys();
    ChildProcess proc(cloud_binary(), {"--model", model, "--listen", "tcp://127.0.0.1:*", "--secret-key",
                                       k.server_secret.string(), "--authorized-keys", k.empty_clients.string()});
    auto st = proc.wait_for(30s);
    const std::string log = proc.out() + proc.err();
    INFO(log);
    REQUIRE(st.has_value());
    CHECK(*st != 0);
    CHECK(contains(log, k.empty_clients.string()));
    CHECK_FALSE(contains(log, "\nlistening on"));
  }
  SUBCASE("a missing authorized_keys folder too") {
    const auto& k = keys();
    const std::string missing = (k.dir / "no-such-folder").string();
    auto r = run_process(cloud_binary(), {"--model", model, "--listen", "tcp://127.0.0.1:*", "--secret-key",
                                          k.server_secret.string(), "--authorized-keys", missing});
    INFO(r.out << r.err);
    CHECK(r.status != 0);
    CHECK(contains(r.out + r.err, missing));
  }
  SUBCASE("limits that would make a useless daemon stop it at start, naming the setting") {
    for (const char* flag : {"--kv-memory-mb", "--max-sessions", "--idle-timeout"}) {
      CAPTURE(std::string(flag));
      auto r = run_process(cloud_binary(), secure_args(model, {flag, "0"}));
      INFO(r.out << r.err);
      CHECK(r.status != 0);
      const std::string name = std::string(flag) == "--kv-memory-mb" ? "kv_memory_mb"
                               : std::string(flag) == "--max-sessions" ? "max_sessions"
                                                                      : "idle_timeout_s";
      CHECK(contains(r.out + r.err, name));
    }
  }
  SUBCASE("a negative number for any numeric flag is refused naming the flag (it was taken as not given)") {
    for (const char* flag : {"--idle-timeout", "--max-sessions", "--key-kv-share", "--spin-us", "--batch-wait-step-fraction"}) {
      CAPTURE(std::string(flag));
      auto r = run_process(cloud_binary(), secure_args(model, {flag, "-3"}));
      INFO(r.out << r.err);
      CHECK(r.status != 0);
      CHECK(contains(r.out + r.err, std::string(flag) + ": must be "));
      CHECK(contains(r.out + r.err, ", not -3"));
      CHECK_FALSE(contains(r.out, "listening on"));
    }
  }
  SUBCASE("--insecure logs a warning, and an insecure edge works against it") {
    DaemonProcess d({"--model", model, "--listen", "tcp://127.0.0.1:*", "--insecure"});
    INFO(d.log());
    CHECK(contains(d.log(), "[warning]"));
    CHECK(contains(d.log(), "CURVE is OFF"));
    auto cfg = split_config(model, d.endpoint());
    cfg.insecure = true;
    cfg.server_key.clear();
    cfg.client_key.clear();
    const auto opts = fixed_options(8);
    CHECK(split_tokens(cfg, kPrompt, opts) == local_tokens(model, kPrompt, opts));
    CHECK(d.stop() == 0);
  }
}
