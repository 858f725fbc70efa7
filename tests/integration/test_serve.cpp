// duet-edge serve tested as its users meet it: a real daemon and a real `duet-edge serve`, driven
// by a standard-library Python OpenAI-style client (openai_client.py), by curl reading the SSE
// stream, and by headless Chromium on the music page (music_page_check.py, screenshot under
// build/test-output/). The daemon's own log shows that every request's session was closed.
#include <doctest/doctest.h>

#include <csignal>
#include <regex>
#include <thread>

#include "harness.hpp"

using namespace duet::itest;

namespace {

// duet-edge serve; waits for its "serving MODEL on http://HOST:PORT" line
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) : proc_(edge_binary(), with_serve(args)) {
    const auto end = std::chrono::steady_clock::now() + 60s;
    static const std::regex line(R"(serving \S+ on (http://[0-9.]+:[0-9]+))");
    while (true) {
      std::smatch m;
      const std::string out = proc_.out();
      if (std::regex_search(out, m, line)) {
        url_ = m[1];
        return;
      }
      if (!proc_.running()) throw std::runtime_error("duet-edge serve exited before serving:\n" + log());
      if (std::chrono::steady_clock::now() >= end)
        throw std::runtime_error("duet-edge serve did not start within 60 s:\n" + log());
      std::this_thread::sleep_for(20ms);
    }
  }
  const std::string& url() const { return url_; }
  std::string log() const { return "--- serve stdout\n" + proc_.out() + "--- serve stderr\n" + proc_.err(); }
  std::optional<int> stop() {
    proc_.signal(SIGTERM);
    return proc_.wait_for(15s);
  }

 private:
  static std::vector<std::string> with_serve(std::vector<std::string> a) {
    a.insert(a.begin(), "serve");
    return a;
  }
  ChildProcess proc_;
  std::string url_;
};

std::vector<std::string> split_args(const std::string& endpoint) {
  const auto& k = keys();
  return {"--model", abc_model(), "--server", endpoint, "--server-key", k.server_public.string(), "--client-key",
          k.edge_secret.string(), "--listen", "127.0.0.1:0"};
}

ProcessResult python(const std::string& script, const std::vector<std::string>& args, std::chrono::milliseconds limit) {
  std::vector<std::string> a = {source_path("tests/integration/" + script)};
  a.insert(a.end(), args.begin(), args.end());
  return run_process("/usr/bin/env", [&] {
    std::vector<std::string> v = {"python3"};
    v.insert(v.end(), a.begin(), a.end());
    return v;
  }(), limit);
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("duet-edge serve over a daemon: OpenAI API, SSE, two streams at once, a dropped stream, the music page") {
  DaemonProcess d(secure_args(abc_model(), {"--devices", "cpu"}));
  ServeProcess s([&] {
    auto a = split_args(d.endpoint());
    a.insert(a.end(), {"--max-active", "2"});
    return a;
  }());
  INFO(s.log());
  INFO(d.log());

  SUBCASE("a stdlib-only OpenAI client") {
    auto r = python("openai_client.py", {"--base", s.url(), "--model-hint", "abc-folk", "api", "music", "concurrent",
                                         "cancel"},
                    240s);
    INFO("client stdout: " << r.out);
    INFO("client stderr: " << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("music: ok") != std::string::npos);
    CHECK(r.out.find("cancel: ok") != std::string::npos);
    // every session the requests opened was closed by the edge, none left to expire; the log
    // line of the last close can trail the client's check by a moment
    std::string log;
    for (int i = 0; i < 100; ++i) {
      log = d.log();
      if (count(log, " opened for ") == count(log, " closed (")) break;
      std::this_thread::sleep_for(20ms);
    }
    CHECK(count(log, " opened for ") >= 8);
    CHECK(count(log, " opened for ") == count(log, " closed ("));
    CHECK(count(log, " expired after ") == 0);
  }

  SUBCASE("curl reads the event stream") {
    const std::string body =
        R"({"model":"abc-folk","prompt":"S:oneills-reel\nM:4/4\nL:1/8\nK:D\n","max_tokens":24,"temperature":0,)"
        R"("stream":true,"stream_options":{"include_usage":true}})";
    auto r = run_process("/usr/bin/curl", {"-sS", "-N", "--max-time", "60", "-H", "Content-Type: application/json",
                                           "-d", body, s.url() + "/v1/completions"},
                         90s);
    INFO("curl stdout: " << r.out);
    INFO("curl stderr: " << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.rfind("data: {", 0) == 0);
    CHECK(count(r.out, "data: {") >= 10);
    CHECK(count(r.out, "\"finish_reason\":\"") == 1);
    CHECK(r.out.find("\"usage\":{\"completion_tokens\":") != std::string::npos);
    const std::string done = "data: [DONE]\n\n";
    REQUIRE(r.out.size() > done.size());
    CHECK(r.out.compare(r.out.size() - done.size(), done.size(), done) == 0);
  }

  SUBCASE("headless Chromium on the music page") {
    const fs::path out_dir = fs::path(DUET_BINARY_DIR) / "test-output";
    fs::create_directories(out_dir);
    const std::string shot = (out_dir / "music_page.png").string();
    fs::remove(shot);
    auto r = python("music_page_check.py", {"--url", s.url() + "/", "--screenshot", shot, "--timeout", "150"}, 240s);
    INFO("page check stdout: " << r.out);
    INFO("page check stderr: " << r.err);
    REQUIRE_MESSAGE(r.status == 0, "the music page check failed (see its stderr above)");
    CHECK(fs::file_size(shot) > 10000);
  }

  CHECK(s.stop() == 0);
  CHECK(d.stop() == 0);
}

TEST_CASE("duet-edge serve --local --api-key: the key is required, and the blocks run in process") {
  ServeProcess s({"--model", abc_model(), "--local", "--listen", "127.0.0.1:0", "--api-key", "sk-duet-test"});
  INFO(s.log());
  auto r = python("openai_client.py", {"--base", s.url(), "--key", "sk-duet-test", "auth"}, 120s);
  INFO("client stdout: " << r.out);
  INFO("client stderr: " << r.err);
  CHECK(r.status == 0);
  CHECK(s.stop() == 0);
}

TEST_CASE("duet-edge serve: a listen address in use, and no daemon, are clear errors") {
  ServeProcess first({"--model", abc_model(), "--local", "--listen", "127.0.0.1:0"});
  const std::string port = first.url().substr(first.url().rfind(':') + 1);
  auto busy = run_process(edge_binary(), {"serve", "--model", abc_model(), "--local", "--listen", "127.0.0.1:" + port},
                          60s);
  CHECK(busy.status == 1);
  CHECK(busy.err.find("cannot listen on 127.0.0.1:" + port) != std::string::npos);
  const auto& k = keys();
  auto nodaemon = run_process(edge_binary(), {"serve", "--model", abc_model(), "--server",
                                              "tcp://127.0.0.1:" + std::to_string(closed_port()), "--server-key",
                                              k.server_public.string(), "--client-key", k.edge_secret.string(),
                                              "--timeout-ms", "1500", "--listen", "127.0.0.1:0"},
                              60s);
  CHECK(nodaemon.status == 2);
  CHECK(nodaemon.err.find("no duet-cloud daemon reachable") != std::string::npos);
  CHECK(first.stop() == 0);
}
